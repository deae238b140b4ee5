// Web Push, where the browser and the server both have it: the notify plugin's VAPID key
// (GET /-/plugins/notify/webpush/key; 404: not there) and its subscription list
// (POST / DELETE /-/plugins/notify/webpush/subscriptions with the PushSubscription's JSON).
// Web Push travels through the browser maker's service (FCM for Chrome), which does not reach
// phones in mainland China: the notify plugin's WeCom / DingTalk / Feishu / ntfy channels do.
import { el, clear } from "./dom.js";
import { t } from "./i18n.js";
import { get, send, errorText } from "./net.js";

const NOTIFY = "/-/plugins/notify/webpush";
let probe = null;

function keyBytes(b64) {
  const pad = "=".repeat((4 - (b64.length % 4)) % 4);
  const raw = atob((b64 + pad).replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

export async function panel(ctx) {
  const box = el("section", { class: "push", id: "push" });
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    box.appendChild(el("p", { class: "muted", "data-push": "unsupported", text: t("push_unsupported") }));
    return box;
  }
  // asked once per page load (the list re-renders on every alarm); again only after a network failure
  if (!probe) probe = get(`${NOTIFY}/key`);
  const key = await probe;
  if (!key.ok && key.status !== 404) probe = null;
  if (!key.ok || !key.data || !key.data.public_key) return box;  // the server has no Web Push: nothing to offer
  const reg = await navigator.serviceWorker.getRegistration(ctx.base);
  if (!reg) return box;
  const draw = async (message) => {
    clear(box);
    const current = await reg.pushManager.getSubscription();
    if (current) box.appendChild(el("p", { class: "muted", "data-push": "on", text: t("push_enabled") }));
    const b = el("button", { type: "button", class: "secondary", id: "push-toggle", text: current ? t("push_off") : t("push_on") });
    b.addEventListener("click", () => (current ? off(current) : on()));
    box.appendChild(b);
    if (message) box.appendChild(el("p", { class: "result", text: message }));
  };
  const on = async () => {
    if ((await Notification.requestPermission()) !== "granted") { draw(t("push_denied")); return; }
    try {
      const sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key.data.public_key) });
      const res = await send("POST", `${NOTIFY}/subscriptions`, sub.toJSON(), ctx.session.csrf);
      if (!res.ok) { await sub.unsubscribe(); draw(t("push_failed", { m: errorText(res, ctx.lang) })); return; }
      draw();
    } catch (e) {
      draw(t("push_failed", { m: String(e && e.message || e) }));
    }
  };
  const off = async (sub) => {
    await send("DELETE", `${NOTIFY}/subscriptions`, sub.toJSON(), ctx.session.csrf);
    await sub.unsubscribe();
    draw();
  };
  await draw();
  return box;
}
