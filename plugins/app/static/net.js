// The network, as the app sees it: JSON reads that tell fresh answers from the service worker's
// stored copies (header x-firebus-stored: when the copy was made), writes with the session's
// anti-forgery token, and the core's event stream for live alarms.

export const net = { online: navigator.onLine !== false, updated: null, signedOut: false };
const listeners = new Set();

export function onNet(fn) { listeners.add(fn); }
function changed() { for (const fn of listeners) fn(net); }

function mark(response) {
  const stored = response.headers.get("x-firebus-stored");
  if (stored) {
    net.online = false;
    net.updated = Number(stored);
  } else if (response.headers.get("x-firebus-offline")) {
    net.online = false;  // offline and nothing stored for this question
  } else {
    net.online = true;
    net.updated = Date.now();
  }
  changed();
}

// GET a JSON document: {ok, status, data, stored} (status 0: no network and no stored copy).
export async function get(url) {
  let response;
  try {
    response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  } catch (e) {
    net.online = false;
    changed();
    return { ok: false, status: 0, data: null, stored: false };
  }
  mark(response);
  if (response.status === 401) { net.signedOut = true; changed(); }
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  return { ok: response.ok, status: response.status, data, stored: !!response.headers.get("x-firebus-stored") };
}

// A write: JSON body, X-CSRF-Token.  Never queued: an acknowledgement must happen now or visibly fail.
export async function send(method, url, body, csrf, type) {
  const headers = { "X-CSRF-Token": csrf || "" };
  if (type) headers["Content-Type"] = type;
  else if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method, credentials: "same-origin", headers,
      body: body === undefined ? undefined : (type ? body : JSON.stringify(body)),
    });
  } catch (e) {
    net.online = false;
    changed();
    return { ok: false, status: 0, data: null };
  }
  if (response.headers.get("x-firebus-offline")) { net.online = false; changed(); }
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  return { ok: response.ok, status: response.status, data };
}

export function errorText(result, lang) {
  const err = result.data && result.data.error;
  if (!err) return String(result.status || "network");
  return (lang === "zh" && err.message_zh) || err.message || err.code;
}

// The core's live stream: fn() on every alarm transition (and after every reconnect, so
// nothing missed while the link was down stays missing).
export function live(fn) {
  if (!window.EventSource) return;
  const source = new EventSource("/api/events?types=alarm", { withCredentials: true });
  source.addEventListener("alarm", () => fn("alarm"));
  source.addEventListener("open", () => fn("open"));
  source.addEventListener("logout", () => { net.signedOut = true; changed(); source.close(); });
  source.addEventListener("resync", () => fn("open"));
  return source;
}

window.addEventListener("offline", () => { net.online = false; changed(); });
