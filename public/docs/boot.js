// Boots the self-hosted API reference (vendor/scalar-api-reference.js, loaded right after this
// file) on the OpenAPI document and drops the server-rendered route list it replaces. A file of
// its own rather than an inline handler, so the page's CSP can stay `script-src 'self'`.
(() => {
  // The page allows only <style> elements carrying its per-answer nonce. The renderer tags its
  // main stylesheet itself but also creates theme and component <style> elements: hand them the
  // nonce as they are created (before insertion, when the policy is checked). Markup injected
  // into the page cannot get it this way, only script from this origin.
  const nonce = document.querySelector('meta[property="csp-nonce"]')?.content;
  if (nonce) {
    const createElement = document.createElement;
    document.createElement = function (tagName, options) {
      const element = createElement.call(this, tagName, options);
      if (element instanceof HTMLStyleElement) element.nonce = nonce;
      return element;
    };
  }

  document.addEventListener("DOMContentLoaded", () => {
    const Scalar = globalThis.Scalar;
    if (!Scalar || typeof Scalar.createApiReference !== "function") return;
    // Not the renderer's own auto-mount id (`api-reference`): that would start a second copy
    // with the default configuration (web fonts from its CDN).
    const mount = document.getElementById("reference");
    Scalar.createApiReference(mount, {
      url: mount.dataset.document,
      // Everything from this origin: no web fonts from the vendor's CDN, no telemetry.
      withDefaultFonts: false,
      telemetry: false,
    });
    document.getElementById("static-docs")?.remove();
  });
})();
