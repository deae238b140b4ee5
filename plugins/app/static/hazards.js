// Hazards of my scope, from the inspection plugin's API (it scopes and checks every action
// again; this view only offers what the role may do): start a rectification, submit it with a
// photo, verify it.  Assigning, rejecting and dismissing stay on the plugin's hazard board.
import { el, when, newId } from "./dom.js";
import { t } from "./i18n.js";
import { get, send, errorText } from "./net.js";

const API = "/-/plugins/inspection/api";
const MANAGE = ["admin", "integrator", "unit_manager"];
const WORK = MANAGE.concat(["duty_officer", "maintenance_engineer"]);
const MAX_PHOTO = 60000;  // bytes: the panel takes request bodies up to 64 KiB

function offered(h, role) {
  const out = [];
  if (WORK.includes(role) && h.state === "assigned") out.push("start");
  if (WORK.includes(role) && (h.state === "assigned" || h.state === "rectifying")) out.push("submit");
  if (MANAGE.includes(role) && h.state === "submitted") out.push("verify");
  return out;
}

// A phone photo (several MB) shrunk to a JPEG under MAX_PHOTO, as the patrol page does.
function shrink(file) {
  return new Promise((resolve, reject) => {
    const img = new Image(), reader = new FileReader();
    reader.onload = () => { img.src = reader.result; };
    reader.onerror = reject;
    img.onerror = reject;
    img.onload = () => {
      let side = 1280, quality = 0.8, data;
      do {
        const scale = Math.min(1, side / Math.max(img.width, img.height)), c = document.createElement("canvas");
        c.width = Math.round(img.width * scale); c.height = Math.round(img.height * scale);
        c.getContext("2d").drawImage(img, 0, 0, c.width, c.height);
        data = c.toDataURL("image/jpeg", quality);
        if (quality > 0.45) quality -= 0.1; else side = Math.round(side * 0.8);
      } while (data.length * 0.75 > MAX_PHOTO && side > 200);
      const bin = atob(data.split(",")[1]), buf = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) buf[i] = bin.charCodeAt(i);
      resolve({ blob: new Blob([buf], { type: "image/jpeg" }), preview: data });
    };
    reader.readAsDataURL(file);
  });
}

export async function list(ctx, target) {
  target.appendChild(el("h2", { text: t("hazards") }));
  const [r, units] = await Promise.all([get(`${API}/hazards`), get("/api/units")]);
  ctx.placeNames = names(units.ok ? units.data.items : []);
  if (r.status === 404) { target.appendChild(el("p", { class: "empty", text: t("no_inspection") })); return; }
  if (!r.ok) { target.appendChild(el("p", { class: "empty", text: r.status === 0 ? t("never") : errorText(r, ctx.lang) })); return; }
  const items = r.data.items.filter((h) => h.state !== "closed")
    .sort((a, b) => (b.overdue - a.overdue) || (a.deadline - b.deadline));
  if (!items.length) target.appendChild(el("p", { class: "empty", text: t("no_hazards") }));
  const ul = el("ul", { class: "hazards" });
  for (const h of items) ul.appendChild(card(ctx, h));
  target.appendChild(ul);
  target.appendChild(el("a", { class: "button secondary", href: `/-/plugins/inspection/hazards?lang=${ctx.lang}`, text: t("board") }));
}

// site-file key → name of every unit, building, floor and location I can see (the hazards
// API speaks in keys)
function names(units) {
  const out = {};
  const walk = (node) => { out[node.key] = node.name || node.key; for (const c of node.buildings || node.children || []) walk(c); };
  units.forEach(walk);
  return out;
}

function card(ctx, h) {
  const name = (key) => (ctx.placeNames && ctx.placeNames[key]) || key;
  const li = el("li", { class: "hazard" + (h.overdue ? " overdue" : "") + (h.severity === "major" ? " major" : ""),
    "data-hazard": h.id, "data-state": h.state }, [
    el("span", { class: "cat", text: h.severity === "major" ? t("major") : t("general") }),
    el("strong", { class: "title", text: h.description }),
    el("span", { class: "where", text: [name(h.unit), name(h.location) || h.checkpoint].filter(Boolean).join(" · ") }),
    el("span", { class: "meta", text: t("state_" + h.state) + (h.overdue ? " · " + t("overdue") : "") +
      (h.responsible ? ` · ${t("responsible")}: ${h.responsible}` : "") + ` · ${t("deadline")}: ${when(h.deadline, ctx.tz, ctx.lang)}` }),
  ]);
  const acts = offered(h, ctx.session.role);
  if (!acts.length || !ctx.session.can_act) return li;
  const form = el("div", { class: "actions" });
  const line = el("p", { class: "result" });
  let photo = null;
  if (acts.includes("submit")) {
    const thumb = el("img", { class: "thumb", alt: "", hidden: true });
    const input = el("input", { type: "file", accept: "image/*", capture: "environment", name: "evidence" });
    input.addEventListener("change", async () => {
      const file = input.files && input.files[0];
      if (!file) return;
      photo = await shrink(file);
      thumb.src = photo.preview;
      thumb.hidden = false;
    });
    form.appendChild(el("label", { class: "photo" }, [t("photo"), input]));
    form.appendChild(thumb);
  }
  const note = el("input", { name: "note", placeholder: t("note") });
  form.appendChild(note);
  const run = async (action, button) => {
    const body = { action, id: newId(), note: note.value || "", photos: [] };
    if (action === "submit") {
      if (!photo) { line.textContent = t("photo_first"); return; }
      button.disabled = true;
      const pid = newId();
      const up = await send("PUT", `${API}/photos/${pid}`, photo.blob, ctx.session.csrf, "image/jpeg");
      if (!up.ok) { button.disabled = false; line.textContent = up.status === 0 ? t("offline_act") : t("failed", { m: errorText(up, ctx.lang) }); return; }
      body.photos = [pid];
    }
    button.disabled = true;
    const res = await send("POST", `${API}/hazards/${encodeURIComponent(h.id)}/actions`, body, ctx.session.csrf);
    if (res.ok) { ctx.refresh(); return; }
    button.disabled = false;
    line.textContent = res.status === 0 ? t("offline_act") : t("failed", { m: errorText(res, ctx.lang) });
  };
  for (const a of acts) {
    const b = el("button", { type: "button", class: "act", "data-action": a, text: t(a) });
    b.addEventListener("click", () => run(a, b));
    form.appendChild(b);
  }
  form.appendChild(line);
  li.appendChild(form);
  return li;
}
