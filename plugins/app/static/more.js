// Patrol (the inspection plugin's phone patrol page does the scanning; here: my open tasks and
// the way in) and reports (each unit's latest stored report and its live score).
import { el, when } from "./dom.js";
import { t, has } from "./i18n.js";
import { get, errorText } from "./net.js";

export async function patrol(ctx, target) {
  target.appendChild(el("h2", { text: t("patrol") }));
  const r = await get("/-/plugins/inspection/api/tasks?status=open");
  if (r.status === 404) { target.appendChild(el("p", { class: "empty", text: t("no_inspection") })); return; }
  target.appendChild(el("a", { class: "button", id: "start-patrol", href: `/-/plugins/inspection/patrol?lang=${ctx.lang}`,
    text: t("start_patrol") }));
  target.appendChild(el("h3", { text: t("open_tasks") }));
  if (!r.ok) { target.appendChild(el("p", { class: "empty", text: r.status === 0 ? t("never") : errorText(r, ctx.lang) })); return; }
  if (!r.data.items.length) { target.appendChild(el("p", { class: "empty", text: t("no_tasks") })); return; }
  target.appendChild(el("ul", { class: "tasks" }, r.data.items.map((task) => {
    const done = task.stops.filter((s) => s.record_id).length;
    return el("li", { "data-task": task.id }, [
      el("strong", { class: "title", text: task.plan_name || task.plan }),
      el("span", { class: "where", text: `${task.unit || ""} · ${done}/${task.stops.length}` }),
      el("span", { class: "meta", text: t("due", { t: when(task.due, ctx.tz, ctx.lang) }) }),
    ]);
  })));
}

function pickFile(files, lang) {
  // The reader's language first, PDF before HTML.
  const order = [`pdf-${lang}`, `html-${lang}`, "pdf-zh", "pdf-en", "html-zh", "html-en"];
  const name = order.find((n) => files[n]) || Object.keys(files)[0];
  return name ? [name, files[name]] : null;
}

export async function reports(ctx, target) {
  target.appendChild(el("h2", { text: t("reports") }));
  const [r, units] = await Promise.all([get("/-/plugins/reports/reports.json"), get("/api/units")]);
  if (r.status === 404) { target.appendChild(el("p", { class: "empty", text: t("no_report_plugin") })); return; }
  if (!r.ok) { target.appendChild(el("p", { class: "empty", text: r.status === 0 ? t("never") : errorText(r, ctx.lang) })); return; }
  const names = {};
  for (const u of (units.ok ? units.data.items : [])) names[u.key] = u.name || u.key;
  const latest = {};
  for (const rep of r.data.reports) if (!latest[rep.unit]) latest[rep.unit] = rep;  // newest first
  for (const key of Object.keys(names)) if (!latest[key]) latest[key] = null;
  const keys = Object.keys(latest).sort();
  if (!keys.length) { target.appendChild(el("p", { class: "empty", text: t("no_reports") })); return; }
  const ul = el("ul", { class: "reports" });
  for (const key of keys) {
    const rep = latest[key];
    const kids = [el("strong", { class: "title", text: names[key] || key })];
    if (rep) {
      const grade = has("grade_" + rep.grade) ? t("grade_" + rep.grade) : rep.grade;
      kids.push(el("span", { class: "meta", text: `${rep.period} · ${t("score")} ${Number(rep.score).toFixed(1)} · ${grade} · ${when(rep.created, ctx.tz, ctx.lang)}` }));
      const file = pickFile(rep.files, ctx.lang);
      if (file) kids.push(el("a", { class: "button", "data-report": rep.id, href: "/-/plugins/reports/" + file[1], text: file[0].toUpperCase() }));
    } else {
      kids.push(el("span", { class: "meta", text: t("no_reports") }));
    }
    kids.push(el("a", { class: "button secondary", href: `/-/plugins/reports/units/${encodeURIComponent(key)}?lang=${ctx.lang}`, text: t("live_score") }));
    ul.appendChild(el("li", { "data-unit": key }, kids));
  }
  target.appendChild(ul);
  target.appendChild(el("a", { class: "button secondary", href: `/-/plugins/reports/reports?lang=${ctx.lang}`, text: t("all_reports") }));
}
