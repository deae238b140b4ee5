// My alarms (the core's /api/alarms: already the caller's scope, in display priority — fire
// first) and one alarm with acknowledge / silence / verdict for the roles that may act.
import { el, when } from "./dom.js";
import { t, has } from "./i18n.js";
import { get, send, errorText } from "./net.js";

function catName(c) { return has("cat_" + c) ? t("cat_" + c) : c; }
function stateName(a) {
  const s = has("st_" + a.status) ? t("st_" + a.status) : a.status;
  const muted = a.silenced && a.active ? s + " · " + t("silenced") : s;
  return a.late ? muted + " · " + t("late_alarm") : muted;
}
function place(a) { return [a.unit_name, a.location_path].filter(Boolean).join(" · "); }
function value(a) {
  const v = a.last_value;
  if (v === null || v === undefined || typeof v === "boolean") return "";
  return String(v) + (a.point_unit ? " " + a.point_unit : "");
}

export async function list(ctx, target) {
  const r = await get(`/api/alarms?status=open&limit=200&lang=${ctx.lang}`);
  target.appendChild(el("h2", { text: t("my_alarms") + (r.ok ? ` (${r.data.total})` : "") }));
  if (!r.ok) {
    target.appendChild(el("p", { class: "empty", text: r.status === 0 ? t("never") : errorText(r, ctx.lang) }));
    return;
  }
  if (!r.data.items.length) target.appendChild(el("p", { class: "empty", id: "no-alarms", text: t("no_alarms") }));
  const ul = el("ul", { class: "alarms" });
  for (const a of r.data.items) {
    ul.appendChild(el("li", {}, [el("a", {
      href: "#/alarm/" + encodeURIComponent(a.id), class: `alarm cat-${a.category} st-${a.status}`,
      "data-alarm": a.id, "data-category": a.category, "data-status": a.status,
    }, [
      el("span", { class: "cat", text: catName(a.category) }),
      el("strong", { class: "title", text: a.text || a.message_zh || a.message }),
      el("span", { class: "where", text: place(a) }),
      el("span", { class: "meta", text: `${when(a.start_ts, ctx.tz, ctx.lang)} · ${stateName(a)}` }),
    ])]));
  }
  target.appendChild(ul);
  const push = await import("./push.js");
  target.appendChild(await push.panel(ctx));
}

export async function detail(ctx, target, id) {
  target.appendChild(el("a", { href: "#/alarms", class: "back", text: t("back") }));
  const r = await get(`/api/alarms/${encodeURIComponent(id)}?lang=${ctx.lang}`);
  if (!r.ok) {
    target.appendChild(el("p", { class: "empty", text: r.status === 404 ? t("not_found") : r.status === 0 ? t("never") : errorText(r, ctx.lang) }));
    return;
  }
  const a = r.data;
  const card = el("section", { class: `detail cat-${a.category}`, "data-alarm": a.id, "data-status": a.status }, [
    el("span", { class: "cat", text: catName(a.category) }),
    el("h2", { class: "title", text: a.text || a.message_zh || a.message }),
  ]);
  const rows = [["unit", a.unit_name], ["where", a.location_path], ["device", a.device_name], ["value", value(a)],
    ["started", when(a.start_ts, ctx.tz, ctx.lang)], ["state", stateName(a)], ["count", a.count > 1 ? String(a.count) : ""]];
  if (a.verdict) rows.push(["verdict", t(a.verdict)]);
  const dl = el("dl");
  for (const [k, v] of rows) if (v) { dl.appendChild(el("dt", { text: t(k) })); dl.appendChild(el("dd", { "data-field": k, text: v })); }
  card.appendChild(dl);
  card.appendChild(actions(ctx, a));
  target.appendChild(card);
  if (a.history && a.history.length) {
    target.appendChild(el("h3", { text: t("history") }));
    target.appendChild(el("ul", { class: "history" }, a.history.map((h) => el("li", {}, [
      el("span", { class: "meta", text: when(h.ts, ctx.tz, ctx.lang) }), " ",
      (has("tr_" + h.transition) ? t("tr_" + h.transition) : h.transition) + (h.actor_kind === "user" ? " · " + h.actor : ""),
      h.detail && h.detail.verdict ? " · " + t(h.detail.verdict) : "",
    ]))));
  }
}

function actions(ctx, a) {
  const box = el("div", { class: "actions" });
  const s = ctx.session;
  if (!s.can_act) { box.appendChild(el("p", { class: "muted", text: t("read_only") })); return box; }
  const line = el("p", { class: "result", id: "result" });
  const act = async (path, body, button) => {
    button.disabled = true;
    const res = await send("POST", `/api/alarms/${encodeURIComponent(a.id)}/${path}`, body, s.csrf);
    if (res.ok) { ctx.refresh(); return; }
    button.disabled = false;
    line.textContent = res.status === 0 ? t("offline_act") : t("failed", { m: errorText(res, ctx.lang) });
  };
  const button = (label, name, path, body) => {
    const b = el("button", { type: "button", class: "act " + name, "data-action": name, text: label });
    b.addEventListener("click", () => act(path, body, b));
    box.appendChild(b);
  };
  if (!a.acknowledged) button(t("ack"), "ack", "ack", {});
  if (a.active && !a.silenced) button(t("silence"), "silence", "silence", {});
  if (a.category === "fire" && !a.verdict) {
    for (const v of ["real_fire", "false_alarm", "test"]) button(t(v), "verdict-" + v, "verdict", { verdict: v });
  }
  if (!box.children.length) box.appendChild(el("p", { class: "muted", text: t("done") }));
  box.appendChild(line);
  return box;
}
