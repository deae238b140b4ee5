// firebus phone app: the shell.  Views by URL hash (#/alarms, #/alarm/ID, #/hazards, #/patrol,
// #/reports), a status line (online / offline, last updated HH:MM), the live alarm stream, and
// the service worker that keeps the shell and the last answers for offline use.
import { el, clear, hhmm } from "./dom.js";
import { t, setLang, chosenLang, currentLang } from "./i18n.js";
import { net, onNet, get, live } from "./net.js";
import * as alarms from "./alarms.js";
import * as hazards from "./hazards.js";
import * as more from "./more.js";

const BASE = "/-/plugins/app/";
const view = document.getElementById("view");
const status = document.getElementById("status");
const TABS = [["alarms", "tab_alarms"], ["hazards", "tab_hazards"], ["patrol", "tab_patrol"], ["reports", "tab_reports"]];

const ctx = {
  base: BASE, view, session: null, tz: "Asia/Shanghai",
  get lang() { return currentLang(); },
  go(hash) { if (location.hash === hash) render(); else location.hash = hash; },
  refresh() { render(); },
};

function route() {
  const parts = (location.hash.replace(/^#\/?/, "") || "alarms").split("/");
  return { name: parts[0], arg: parts.slice(1).map(decodeURIComponent).join("/") };
}

function showStatus() {
  status.dataset.online = net.online ? "1" : "0";
  const when = net.updated ? t("updated", { t: hhmm(net.updated, ctx.tz) }) : t("never");
  status.textContent = (net.online ? t("online") : t("offline")) + " · " + when;
  if (net.signedOut) {
    status.appendChild(document.createTextNode(" · "));
    status.appendChild(el("a", { href: "/login?next=" + encodeURIComponent(BASE), text: t("sign_in") }));
  }
}

function chrome() {
  document.getElementById("lang").textContent = t("language");
  const s = ctx.session;
  document.getElementById("title").textContent = t("app_title") + (s && s.site ? " · " + s.site : "");
  const tabs = document.getElementById("tabs");
  if (!tabs.children.length) for (const [name] of TABS) tabs.appendChild(el("a", { href: "#/" + name, "data-tab": name }));
  const current = route().name === "alarm" ? "alarms" : route().name;
  TABS.forEach(([name, key], i) => {
    tabs.children[i].textContent = t(key);
    tabs.children[i].className = current === name ? "on" : "";
  });
  showStatus();
}

let rendering = 0;
async function render() {
  const mine = ++rendering;
  chrome();
  const { name, arg } = route();
  const target = document.createElement("div");
  try {
    if (!ctx.session) await session();
    if (!ctx.session) {
      target.appendChild(el("p", { class: "empty", text: t("signed_out") }));
      target.appendChild(el("a", { class: "button", href: "/login?next=" + encodeURIComponent(BASE), text: t("sign_in") }));
    } else if (name === "alarm") await alarms.detail(ctx, target, arg);
    else if (name === "hazards") await hazards.list(ctx, target);
    else if (name === "patrol") await more.patrol(ctx, target);
    else if (name === "reports") await more.reports(ctx, target);
    else await alarms.list(ctx, target);
  } catch (e) {
    target.appendChild(el("p", { class: "error", text: t("failed", { m: String(e && e.message || e) }) }));
  }
  if (mine !== rendering) return;  // a newer render started meanwhile: its answer wins
  clear(view).appendChild(target);
  chrome();
}

async function session() {
  const r = await get(BASE + "api/session");
  if (r.ok && r.data) {
    ctx.session = r.data;
    ctx.tz = r.data.tz || ctx.tz;
    if (!chosenLang()) setLang(r.data.lang || "zh", false);
  } else if (r.status === 401 || r.status === 403) {
    net.signedOut = true;
  }
}

// -- start ------------------------------------------------------------------------------------
setLang(new URLSearchParams(location.search).get("lang") || chosenLang() || "zh", false);
const wanted = new URLSearchParams(location.search).get("alarm");
if (wanted) history.replaceState(null, "", BASE + "#/alarm/" + encodeURIComponent(wanted));  // a signed link's "sign in to act"

document.getElementById("lang").addEventListener("click", () => {
  setLang(currentLang() === "zh" ? "en" : "zh", true);
  render();
});
window.addEventListener("hashchange", render);
window.addEventListener("online", render);
onNet(showStatus);

let pending = null;
live(() => {
  // Many transitions arrive together in an alarm storm: one reload for the lot.
  if (pending) return;
  pending = setTimeout(() => { pending = null; if (["alarms", "alarm"].includes(route().name)) render(); }, 250);
});
// The stream is the fast path; this catches a stream a proxy cut silently.  Views with a form
// (hazards: a photo being taken) are not re-rendered under the user's fingers.
setInterval(() => { if (["alarms", "alarm"].includes(route().name)) render(); }, 60000);

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register(BASE + "sw.js", { scope: BASE }).catch(() => {});
}
window.firebusApp = { ctx, render, net };
render();
