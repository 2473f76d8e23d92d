// emailoctopus-connect's connect script: a "Connect EmailOctopus" button for
// an app's page. No dependencies, no build step. Load it from the connect
// server, which is this module's own origin:
//
//   import { connect } from "https://connect.example.com/connect.js";
//   button.onclick = () =>
//     connect({ sessionToken }).then(
//       ({ connectionId, kind }) => ...,
//       (error) => ... error.reason: declined | closed | expired | blocked | failed
//     );
//
// The promise settles from the session's status on the server, which the
// popup's message only prompts it to read: it does not depend on
// window.opener or postMessage, which a provider's Cross-Origin-Opener-Policy
// or the user closing the window can take away.

const SERVER = new URL(import.meta.url).origin;
const POLL_MS = 1000;
const CLOSED_POLL_MS = 250;
const CLOSED_GRACE_MS = 2000;

export class ConnectError extends Error {
  constructor(reason, message) {
    super(message);
    this.name = "ConnectError";
    this.reason = reason;
  }
}

const REASONS = {
  declined: "The account owner declined the connection.",
  expired: "The connect link expired; ask the server for a new session.",
  failed: "The connection could not be made.",
};

/**
 * Connects an EmailOctopus account through the connect session `sessionToken`.
 * mode "popup" (the default) must be called inside a click: browsers block
 * popups opened later. mode "redirect" takes the whole page to the connect
 * page; call connect() again with the same token once back at `return_to`
 * and it settles from the session's status. `closedGraceMs` is how long a
 * window that looks closed is given before the promise rejects as `closed`.
 */
export function connect({ sessionToken, mode = "popup", closedGraceMs = CLOSED_GRACE_MS } = {}) {
  if (typeof sessionToken !== "string" || sessionToken === "") {
    return Promise.reject(new ConnectError("failed", "connect() needs a sessionToken."));
  }
  const connectUrl = `${SERVER}/?session=${encodeURIComponent(sessionToken)}`;
  if (mode === "redirect") return redirect(sessionToken, connectUrl);
  if (mode !== "popup") {
    return Promise.reject(new ConnectError("failed", `Unknown mode ${mode}: use "popup" or "redirect".`));
  }
  // At once, inside the caller's click: a popup opened after an await is blocked.
  const popup = window.open(connectUrl, "emailoctopus-connect", features());
  if (!popup) {
    return Promise.reject(
      new ConnectError("blocked", 'The browser blocked the connect window: allow popups here, or use mode "redirect".'),
    );
  }
  return watch(sessionToken, popup, closedGraceMs);
}

function features() {
  const width = 520;
  const height = 720;
  const left = Math.max(0, window.screenX + (window.outerWidth - width) / 2);
  const top = Math.max(0, window.screenY + (window.outerHeight - height) / 2);
  return `popup,width=${width},height=${height},left=${left},top=${top}`;
}

async function readStatus(token) {
  const url = `${SERVER}/connect-sessions/status?session=${encodeURIComponent(token)}`;
  try {
    const answer = await fetch(url, { cache: "no-store", credentials: "omit" });
    return answer.ok ? await answer.json() : null;
  } catch {
    return null; // offline, or a status this page may not read: ask again later
  }
}

// The settled value for a final status, or null while it is pending.
function outcome(status) {
  if (!status || status.status === "pending") return null;
  if (status.status === "connected") {
    return { ok: true, value: { connectionId: status.connection_id, kind: status.kind, status: "connected" } };
  }
  const reason = REASONS[status.status] ? status.status : "failed";
  return { ok: false, value: new ConnectError(reason, REASONS[reason]) };
}

function watch(token, popup, closedGraceMs) {
  return new Promise((resolve, reject) => {
    let timer;
    let closedSince = null;
    let running = false;
    let again = false;
    const stop = (result) => {
      clearTimeout(timer);
      window.removeEventListener("message", onMessage);
      (result.ok ? resolve : reject)(result.value);
    };
    const check = async () => {
      if (running) return void (again = true);
      running = true;
      clearTimeout(timer);
      const result = outcome(await readStatus(token));
      running = false;
      if (result) return stop(result);
      if (popup.closed) {
        closedSince ??= Date.now();
        if (Date.now() - closedSince >= closedGraceMs) {
          return stop({ ok: false, value: new ConnectError("closed", "The connect window was closed before the connection was made.") });
        }
      } else {
        closedSince = null;
      }
      if (again) {
        again = false;
        return check();
      }
      timer = setTimeout(check, popup.closed ? CLOSED_POLL_MS : POLL_MS);
    };
    // Only a prompt to read the status: the message itself is not trusted.
    const onMessage = (event) => {
      if (event.origin === SERVER && event.source === popup && event.data?.type === "emailoctopus-connect") check();
    };
    window.addEventListener("message", onMessage);
    timer = setTimeout(check, POLL_MS);
  });
}

async function redirect(token, connectUrl) {
  const result = outcome(await readStatus(token));
  if (result) {
    if (result.ok) return result.value;
    throw result.value;
  }
  window.location.assign(connectUrl);
  return new Promise(() => {}); // this page is leaving
}
