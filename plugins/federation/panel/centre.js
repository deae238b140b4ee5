// The centre's panel: re-fetch the live part of the page (?part=1) every few seconds, and send
// alarm commands without leaving the page. Signed out (401): back to the sign-in page.
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("cfg").textContent);
  const live = document.getElementById("live");
  const status = document.getElementById("refresh");
  if (!live) return;
  let timer = null;
  let flash = "";
  let flashCmd = "";  // the command the message is about: it goes once the site has answered

  function toSignIn() {
    const next = location.pathname + location.search;
    location.href = cfg.signin + "?m=expired&next=" + encodeURIComponent(next);
  }
  function busy() {
    // Someone is typing a note: the refresh waits rather than wipe it.
    const a = document.activeElement;
    if (a && live.contains(a) && (a.tagName === "INPUT" || a.tagName === "SELECT")) return true;
    return Array.prototype.some.call(live.querySelectorAll("input[name=note]"), (i) => i.value !== "");
  }
  function showFlash() {
    const out = document.getElementById("flash");
    const row = flashCmd && document.getElementById("cmd-" + flashCmd);
    if (row && (row.dataset.state === "applied" || row.dataset.state === "refused")) { flash = ""; flashCmd = ""; }
    if (out && flash) { out.textContent = flash; out.hidden = false; }
  }
  async function refresh() {
    clearTimeout(timer);
    let delay = cfg.poll_ms;
    try {
      const url = new URL(location.href);
      url.searchParams.set("part", "1");
      url.hash = "";
      const r = await fetch(url, {credentials: "same-origin", cache: "no-store"});
      if (r.status === 401) { toSignIn(); return; }
      const text = await r.text();
      if (!r.ok && r.status !== 404) throw new Error(String(r.status));
      if (!busy()) { live.innerHTML = text; showFlash(); }
      status.hidden = true;
      live.dataset.refreshed = String(Date.now());
    } catch (_) {
      status.textContent = cfg.t.refresh_failed;
      status.hidden = false;
    }
    if (live.querySelector("[data-pending]")) delay = 1000;
    timer = setTimeout(refresh, delay);
  }
  live.addEventListener("submit", async (ev) => {
    const form = ev.target.closest("form.cmd");
    if (!form) return;
    ev.preventDefault();
    const body = new URLSearchParams(new FormData(form));
    if (ev.submitter && ev.submitter.name) body.set(ev.submitter.name, ev.submitter.value);
    form.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    flash = cfg.t.sending;
    showFlash();
    try {
      const r = await fetch(form.action, {method: "POST", credentials: "same-origin", body: body,
        headers: {"accept": "application/json", "content-type": "application/x-www-form-urlencoded"}});
      if (r.status === 401) { toSignIn(); return; }
      const data = await r.json();
      flash = r.ok ? data.message : data.error.message;
      flashCmd = r.ok ? data.id : "";
    } catch (_) {
      flash = cfg.t.refresh_failed;
    }
    form.querySelectorAll("input[name=note]").forEach((i) => { i.value = ""; });
    if (document.activeElement) document.activeElement.blur();
    refresh();
  });
  timer = setTimeout(refresh, cfg.poll_ms);
})();
