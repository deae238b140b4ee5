// Urge and answer forms: JSON to the plugin's API with the session's anti-forgery token.
(function () {
  const cfg = JSON.parse(document.getElementById("cfg").textContent);
  async function send(url, body, out) {
    const r = await fetch(url, {method: "POST", credentials: "same-origin",
      headers: {"content-type": "application/json", "x-csrf-token": cfg.csrf}, body: JSON.stringify(body)});
    if (r.ok) { location.reload(); return; }
    let msg = out.dataset.fail;
    try { const e = (await r.json()).error; msg += ": " + (cfg.lang === "zh" ? e.message_zh : e.message); } catch (_) {}
    out.textContent = msg;
  }
  const form = document.getElementById("urge-form");
  if (form) form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const body = {unit: form.unit.value, text: form.text.value};
    if (form.due.value) body.due = new Date(form.due.value).getTime() / 1000;
    send(cfg.base + "/api/urges", body, form.querySelector("output"));
  });
  document.querySelectorAll("form.answer").forEach((f) => f.addEventListener("submit", (ev) => {
    ev.preventDefault();
    send(cfg.base + "/api/urges/" + encodeURIComponent(f.dataset.id) + "/answer", {text: f.text.value}, f.querySelector("output"));
  }));
})();
