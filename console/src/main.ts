// The operator console's shell: sign-in (with TOTP when the account has it), the navigation between
// views (hash routes, so reloading keeps the view), and the "API unreachable" banner that replaces
// a blank screen whenever the API stops answering.
import "uplot/dist/uPlot.min.css";
import "./style.css";
import { ApiProblem, ApiUnreachable, events, login, logout, signedInAs } from "./api.ts";
import { h, replace } from "./dom.ts";
import { collectorsView } from "./views/collectors.ts";
import { marketView } from "./views/market.ts";
import { sagasView } from "./views/sagas.ts";
import { salesView } from "./views/sales.ts";

const app = document.getElementById("app")!;
const banner = document.getElementById("api-status")!;
const HEALTH_PROBE_MS = 3000;

const VIEWS = {
  market: { title: "Market", mount: marketView },
  collectors: { title: "Collectors", mount: collectorsView },
  sales: { title: "Sales", mount: salesView },
  sagas: { title: "Sagas", mount: sagasView },
} as const;
type ViewName = keyof typeof VIEWS;

let unmount: (() => void) | null = null;
let probe: ReturnType<typeof setInterval> | undefined;

/** Shows or hides the banner; while the API is unreachable, probes /health until it answers. */
function setReachable(reachable: boolean, detail?: string): void {
  if (reachable) {
    if (!banner.hidden) banner.hidden = true;
    clearInterval(probe);
    probe = undefined;
    return;
  }
  replace(
    banner,
    h("strong", {}, "The edgepulse API is not answering. "),
    `${location.origin} could not be reached${detail ? ` (${detail})` : ""}; retrying every ${HEALTH_PROBE_MS / 1000} s. `,
    "Data on screen may be out of date.",
  );
  banner.hidden = false;
  probe ??= setInterval(async () => {
    try {
      if ((await fetch("/health", { cache: "no-store" })).ok) {
        setReachable(true);
        route();
      }
    } catch {
      // still down; the banner stays
    }
  }, HEALTH_PROBE_MS);
}
events.onReachability = setReachable;
events.onSignedOut = (reason) => showLogin(reason);

function showLogin(message?: string): void {
  unmount?.();
  unmount = null;
  const email = h("input", { id: "email", name: "email", type: "email", autocomplete: "username", required: true });
  const password = h("input", {
    id: "password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const totp = h("input", {
    id: "totp",
    name: "totp",
    inputmode: "numeric",
    autocomplete: "one-time-code",
    pattern: "[0-9]{6}",
    maxlength: 6,
  });
  const totpRow = h("p", { hidden: true }, h("label", { for: "totp" }, "Authenticator code"), totp);
  const error = h("p", { class: "error", role: "alert" }, message ?? "");
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "login", "aria-labelledby": "login-title" },
    h("h2", { id: "login-title" }, "Operator sign-in"),
    h("p", {}, h("label", { for: "email" }, "Email"), email),
    h("p", {}, h("label", { for: "password" }, "Password"), password),
    totpRow,
    error,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    try {
      await login(email.value, password.value, totp.value || undefined);
      if (!location.hash || location.hash === "#/login") location.hash = "#/market";
      route();
    } catch (e) {
      if (e instanceof ApiProblem && e.type.endsWith("/mfa-required")) {
        totpRow.hidden = false;
        error.textContent = "This account uses two-factor sign-in: enter the code from your authenticator.";
        totp.focus();
      } else if (e instanceof ApiUnreachable) {
        error.textContent = "The API is not answering; try again in a moment.";
      } else {
        error.textContent = e instanceof Error ? e.message : String(e);
      }
    } finally {
      submit.disabled = false;
    }
  });
  replace(app, form);
  email.focus();
}

function shell(active: ViewName): HTMLElement {
  const main = h("main", { id: "view", tabindex: -1 });
  const nav = h(
    "nav",
    { "aria-label": "Console views" },
    h(
      "ul",
      {},
      ...(Object.keys(VIEWS) as ViewName[]).map((name) =>
        h(
          "li",
          {},
          h("a", { href: `#/${name}`, "aria-current": name === active ? "page" : undefined }, VIEWS[name].title),
        ),
      ),
    ),
  );
  const signOut = h("button", { type: "button", id: "sign-out" }, "Sign out");
  signOut.addEventListener("click", async () => {
    await logout();
    location.hash = "#/login";
    showLogin("Signed out.");
  });
  replace(
    app,
    h("div", { class: "bar" }, nav, h("span", { class: "muted" }, `Signed in as ${signedInAs()}`), signOut),
    main,
  );
  return main;
}

function route(): void {
  if (!signedInAs()) {
    showLogin();
    return;
  }
  const [, name = "market", arg] = location.hash.split("/").map(decodeURIComponent);
  const view: ViewName = name in VIEWS ? (name as ViewName) : "market";
  try {
    unmount?.();
  } catch (error) {
    // A view that fails to clean up must not keep the next one from showing.
    console.error("view cleanup failed", error);
  }
  unmount = null;
  const main = shell(view);
  document.title = `${VIEWS[view].title} · edgepulse console`;
  unmount = VIEWS[view].mount(main, arg);
}

window.addEventListener("hashchange", () => {
  route();
  document.getElementById("view")?.focus();
});

// First contact: a console whose API is down says so instead of showing an empty page.
fetch("/health", { cache: "no-store" }).then(
  (res) => {
    if (!res.ok) setReachable(false, `health answered ${res.status}`);
    route();
  },
  (error: unknown) => {
    setReachable(false, String(error));
    route();
  },
);
