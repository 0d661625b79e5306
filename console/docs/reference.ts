// The /docs page's interactive API reference (@scalar/api-reference, pinned in package.json),
// bundled by Vite into public/docs/app/ with the console, so the page loads nothing from a third
// party and works offline. The page itself is rendered by the Worker (workers/routes/docs.ts) with
// a plain route list, which this replaces once the reference mounts.
import { createApiReference } from "@scalar/api-reference";
import "@scalar/api-reference/style.css";

// The page allows only <style> elements carrying its per-answer nonce. The renderer creates theme
// and component <style> elements at run time: hand them the nonce as they are created (before
// insertion, when the policy is checked). Markup injected into the page cannot get it this way,
// only script from this origin.
const nonce = document.querySelector<HTMLMetaElement>('meta[property="csp-nonce"]')?.content;
if (nonce) {
  const createElement = document.createElement.bind(document);
  document.createElement = ((tagName: string, options?: ElementCreationOptions) => {
    const element = createElement(tagName, options);
    if (element instanceof HTMLStyleElement) element.nonce = nonce;
    return element;
  }) as typeof document.createElement;
}

const mount = document.getElementById("reference");
if (mount) {
  createApiReference(mount, {
    url: mount.dataset.document ?? "/v1/openapi.json",
    // Everything from this origin: no web fonts from the vendor's CDN, no telemetry.
    withDefaultFonts: false,
    telemetry: false,
  });
  document.getElementById("static-docs")?.remove();
}
