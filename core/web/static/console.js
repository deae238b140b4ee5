// firebus alarm console (/console): the duty desk's full-screen view.
// Sections in GB 4717 display order (fire, gas/electrical, supervisory, faults), a
// persistent tone per section until its alarms are silenced, a flashing banner while a
// fire alarm is unacknowledged, keyboard shortcuts, live over /api/events.
(function () {
  "use strict";
  var page = JSON.parse(document.getElementById("page-data").textContent);
  var S = page.strings;
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var SECTIONS = page.sections;  // [[key, [categories]], ...] in display order
  var sectionOf = {};
  SECTIONS.forEach(function (s) { s[1].forEach(function (c) { sectionOf[c] = s[0]; }); });
  var alarms = [], selectedId = null, byId = {}, seenIds = null, picked = false;

  function el(tag, attrs, children) {
    var n = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === "text") n.textContent = attrs[k]; else if (k === "cls") n.className = attrs[k]; else n.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c) n.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return n;
  }
  var fmt = null;
  try {
    fmt = new Intl.DateTimeFormat("en-CA", { timeZone: page.tz || undefined, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  } catch (e) { fmt = null; }
  function fmtTime(ts) {
    if (!ts) return "—";
    if (!fmt) return new Date(ts * 1000).toLocaleString();
    var p = {}; fmt.formatToParts(new Date(ts * 1000)).forEach(function (x) { p[x.type] = x.value; });
    return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + ":" + p.second;
  }
  var alarmClasses = {}; (page.alarm_classes || []).forEach(function (c) { alarmClasses[c] = true; });
  function fmtValue(v, unit, cls) {
    if (v === null || v === undefined) return "—";
    if (v === true || v === false) {
      var key = (alarmClasses[cls] || /_alarm$/.test(cls || "")) ? (v ? "val_alarm" : "val_normal")
        : (/fault$|^tamper$/.test(cls || "") ? (v ? "val_fault" : "val_normal") : (v ? "val_on" : "val_off"));
      return S[key] || String(v);
    }
    if (typeof v === "string") return S["val_" + v] || v;
    if (typeof v === "number" && !Number.isInteger(v)) v = Math.round(v * 1000) / 1000;
    return (String(v) + " " + (unit || "")).trim();
  }
  function api(method, url, body) {
    var opts = { method: method, headers: { "Accept": "application/json" }, credentials: "same-origin" };
    if (method !== "GET") {
      opts.headers["X-CSRF-Token"] = csrf; opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body || {});
    }
    return fetch(url, opts).then(function (r) {
      return r.json().then(function (j) { if (!r.ok) throw new Error((j.error && j.error.message) || r.status); return j; });
    });
  }

  // -- sound: one tone pattern per section, the most urgent sounding one plays ---------------
  // Web Audio, no file to fetch.  Browsers start audio only after a gesture: one click on
  // the button enables it and the choice is remembered; after a reload the first click or
  // key press anywhere resumes it (the hint says so).
  var soundBtn = document.getElementById("sound-enable"), hint = document.getElementById("sound-hint");
  var soundOn = localStorage.getItem("firebus.sound") === "on";
  var ctx = null, nextAt = 0;
  var PATTERNS = {  // [frequency Hz, seconds] steps, then the cycle length
    fire: { steps: [[960, 0.25], [640, 0.25], [960, 0.25], [640, 0.25]], cycle: 1.0 },
    leakage: { steps: [[1200, 0.15], [0, 0.15], [1200, 0.15]], cycle: 1.5 },
    supervisory: { steps: [[520, 0.4]], cycle: 3.0 },
    fault: { steps: [[700, 0.12]], cycle: 5.0 },
  };
  function audioState() { return !soundOn ? "off" : (ctx && ctx.state === "running" ? "running" : "suspended"); }
  function showSound() {
    var st = audioState();
    soundBtn.dataset.state = st;
    soundBtn.textContent = soundOn ? (S.sound_enabled + " · " + S.sound_off) : S.sound_enable;
    hint.hidden = st !== "suspended";
    document.body.dataset.audio = st;
  }
  function ensureAudio() {
    if (!soundOn) return;
    try {
      ctx = ctx || new (window.AudioContext || window.webkitAudioContext)();
      if (ctx.state !== "running") ctx.resume().then(showSound, showSound);
    } catch (e) { ctx = null; }
    showSound();
  }
  soundBtn.addEventListener("click", function (ev) {
    ev.stopPropagation();
    soundOn = !soundOn;
    localStorage.setItem("firebus.sound", soundOn ? "on" : "off");
    if (soundOn) ensureAudio(); else showSound();
  });
  ["click", "keydown"].forEach(function (t) { document.addEventListener(t, function () { if (soundOn) ensureAudio(); }); });
  function sounding(a) { return a.open && !a.silenced && (a.active || !a.acknowledged); }
  function tick() {
    var loud = null;
    for (var i = 0; i < SECTIONS.length && !loud; i++) {
      var key = SECTIONS[i][0];
      if (alarms.some(function (a) { return sectionOf[a.category] === key && sounding(a); })) loud = key;
    }
    document.body.dataset.sounding = loud || "";
    document.querySelectorAll(".csec").forEach(function (s) {
      var on = alarms.some(function (a) { return sectionOf[a.category] === s.dataset.section && sounding(a); });
      s.querySelector(".sounding-flag").hidden = !on;
    });
    if (!loud || !ctx || ctx.state !== "running") return;
    var now = ctx.currentTime;
    if (now < nextAt - 0.05) return;
    var p = PATTERNS[loud], t = Math.max(now, nextAt);
    p.steps.forEach(function (s) {
      if (s[0]) {
        var osc = ctx.createOscillator(), gain = ctx.createGain();
        osc.type = "square"; osc.frequency.value = s[0];
        gain.gain.setValueAtTime(0.15, t); gain.gain.setValueAtTime(0, t + s[1] * 0.95);
        osc.connect(gain); gain.connect(ctx.destination); osc.start(t); osc.stop(t + s[1]);
      }
      t += s[1];
    });
    nextAt = Math.max(now, nextAt) + p.cycle;
  }
  setInterval(tick, 200);
  if (soundOn) ensureAudio(); else showSound();

  // -- the lists --------------------------------------------------------------------------
  function where(a) {
    return [a.unit_name, a.location_path].filter(Boolean).join(" · ") || "—";
  }
  function row(a) {
    var li = el("li", { cls: "crow cat-row-" + a.category + (a.active ? " active" : " reset") + (a.acknowledged ? " acked" : " unacked") +
      (a.id === selectedId ? " sel" : ""), "data-alarm": a.id, "data-category": a.category, "data-status": a.status, tabindex: "0" }, [
      el("span", { cls: "cat cat-" + a.category, text: S["cat_" + a.category] || a.category }),
      el("span", { cls: "cwhere", text: where(a) }),
      el("span", { cls: "cfloor", text: a.floor ? a.floor.name : "" }),
      el("span", { cls: "cdev", text: a.device_name || "—" }),
      el("span", { cls: "cval", text: fmtValue(a.last_value, a.point_unit, a.point_class) }),
      el("span", { cls: "cst", text: (S["st_" + a.status] || a.status) + (a.silenced ? " · " + S.silenced : "")
        + (a.late ? " · " + S.late_alarm : "") }),
      el("span", { cls: "cts muted", text: fmtTime(a.start_ts) }),
    ]);
    li.addEventListener("click", function () { select(a.id); });
    li.addEventListener("dblclick", function () { location.href = "/alarms/" + a.id; });
    return li;
  }
  function render() {
    byId = {};
    alarms.forEach(function (a) { byId[a.id] = a; });
    if (selectedId && !byId[selectedId]) { selectedId = null; picked = false; }
    // The most urgent alarm is selected (the API's order) until the operator picks one; a
    // new unacknowledged fire takes the selection whatever was picked.
    var newFire = alarms.filter(function (a) { return a.category === "fire" && !a.acknowledged && seenIds && !seenIds[a.id]; })[0];
    if (newFire) { selectedId = newFire.id; picked = false; }
    if ((!selectedId || !picked) && alarms.length) selectedId = alarms[0].id;
    seenIds = {}; alarms.forEach(function (a) { seenIds[a.id] = true; });
    SECTIONS.forEach(function (s) {
      var list = document.querySelector('[data-list="' + s[0] + '"]');
      var mine = alarms.filter(function (a) { return sectionOf[a.category] === s[0]; });
      list.textContent = "";
      mine.forEach(function (a) { list.appendChild(row(a)); });
      if (!mine.length) list.appendChild(el("li", { cls: "muted empty", text: "—" }));
      document.querySelector('[data-count="' + s[0] + '"]').textContent = String(mine.length);
      s[1].forEach(function (c) {
        var b = document.querySelector('[data-cat-count="' + c + '"]');
        if (b) b.textContent = String(mine.filter(function (a) { return a.category === c; }).length);
      });
      list.parentNode.classList.toggle("has", mine.length > 0);
    });
    var unackedFire = alarms.filter(function (a) { return a.category === "fire" && !a.acknowledged; });
    var banner = document.getElementById("fire-banner");
    banner.hidden = !unackedFire.length;
    if (unackedFire.length) {
      var f = unackedFire[0];
      banner.textContent = S.banner_fire.replace("{n}", unackedFire.length) + "  " + where(f) + (f.device_name ? " · " + f.device_name : "");
    }
    renderSelected();
    tick();
  }
  function button(label, action, body, key) {
    var b = el("button", { type: "button", cls: "act " + action, "data-action": action, text: label + (key ? " [" + key + "]" : "") });
    b.addEventListener("click", function () { act(action, body); });
    return b;
  }
  // The side panel: the alarm's facts and actions (re-drawn on every change), and its floor
  // plan (drawn once per floor and highlight, re-coloured otherwise: no flicker).
  var side = document.getElementById("selected"), info = el("div", {}), planBox = el("div", { cls: "plan-mini" }), planKey = "";
  side.textContent = "";
  side.appendChild(info);
  side.appendChild(planBox);
  function renderSelected() {
    var box = info;
    box.textContent = "";
    var a = byId[selectedId];
    if (!a) {
      box.appendChild(el("p", { cls: "muted", text: S.no_selection }));
      planBox.textContent = ""; planKey = ""; delete side.dataset.alarm;
      return;
    }
    side.dataset.alarm = a.id;
    box.appendChild(el("h2", {}, [el("span", { cls: "cat cat-" + a.category, text: S["cat_" + a.category] || a.category }), " ",
      el("a", { href: "/alarms/" + a.id, text: a.text || a.message || "" })]));
    var dl = el("dl", { cls: "facts" });
    [[S.unit, a.unit_name], [S.location, a.location_path], [S.floor, a.floor && a.floor.name], [S.device, a.device_name],
     [S.value, fmtValue(a.last_value, a.point_unit, a.point_class)], [S.time, fmtTime(a.start_ts)],
     [S.status, (S["st_" + a.status] || a.status) + (a.silenced ? " · " + S.silenced : "")], [S.count, String(a.count)]]
      .forEach(function (p) { dl.appendChild(el("dt", { text: p[0] })); dl.appendChild(el("dd", { text: p[1] || "—" })); });
    box.appendChild(dl);
    if (page.can_act) {
      var acts = el("div", { cls: "actions" });
      if (!a.acknowledged) acts.appendChild(button(S.ack, "ack", null, "A"));
      if (a.active && !a.silenced) acts.appendChild(button(S.silence, "silence", null, "S"));
      if (a.category === "fire") {
        [["real_fire", "F"], ["false_alarm", "X"], ["test", "T"]].forEach(function (v) {
          acts.appendChild(button(S[v[0]] + (a.verdict === v[0] ? " ✓" : ""), "verdict", { verdict: v[0] }, v[1]));
        });
      }
      box.appendChild(acts);
    }
    var hl = (a.devices || []).map(function (d) { return d.id; }), key = a.floor ? a.floor.id + "|" + hl.join(",") : "";
    if (!key || !window.firebusPlan) { planBox.textContent = ""; planKey = ""; }
    else if (key !== planKey) { planKey = key; window.firebusPlan.show(planBox, a.floor.id, hl, false); }
    else window.firebusPlan.recolour(planBox, a.floor.id);
  }
  function select(id) {
    selectedId = id;
    picked = true;
    document.querySelectorAll(".crow").forEach(function (r) { r.classList.toggle("sel", r.dataset.alarm === id); });
    renderSelected();
  }
  function act(action, body) {
    var a = byId[selectedId];
    if (!a || !page.can_act) return;
    if (action === "ack" && a.acknowledged) return;
    if (action === "silence" && (!a.active || a.silenced)) return;
    if (action === "verdict" && a.category !== "fire") return;
    api("POST", "/api/alarms/" + encodeURIComponent(a.id) + "/" + action, body || {}).then(load)
      .catch(function (e) { info.appendChild(el("p", { cls: "err", text: e.message })); });
  }
  function load() {
    return api("GET", "/api/alarms?status=open&limit=500").then(function (list) { alarms = list.items; render(); });
  }

  // -- keyboard ---------------------------------------------------------------------------
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || /INPUT|TEXTAREA|SELECT/.test((ev.target || {}).tagName || "")) return;
    var k = ev.key.toLowerCase(), ids = alarms.map(function (a) { return a.id; }), i = ids.indexOf(selectedId);
    if (k === "arrowdown" || k === "j") { if (ids.length) select(ids[Math.min(ids.length - 1, i + 1)]); }
    else if (k === "arrowup" || k === "k") { if (ids.length) select(ids[Math.max(0, i - 1)]); }
    else if (k === "a") act("ack");
    else if (k === "s") act("silence");
    else if (k === "f") act("verdict", { verdict: "real_fire" });
    else if (k === "x") act("verdict", { verdict: "false_alarm" });
    else if (k === "t") act("verdict", { verdict: "test" });
    else if (k === "m") soundBtn.click();
    else if (k === "enter" && selectedId) location.href = "/alarms/" + selectedId;
    else return;
    ev.preventDefault();
  });

  // -- clock and live stream ---------------------------------------------------------------
  var clock = document.getElementById("clock");
  setInterval(function () { clock.textContent = fmtTime(Date.now() / 1000); }, 1000);
  var live = document.getElementById("live"), timer = null;
  function soon() { clearTimeout(timer); timer = setTimeout(load, 120); }
  function connect() {
    var es = new EventSource("/api/events?types=alarm");
    es.addEventListener("open", function () { live.hidden = false; live.className = "live"; live.textContent = "● " + S.live; soon(); });
    es.addEventListener("error", function () { live.className = "live down"; live.textContent = "● " + S.disconnected; });
    es.addEventListener("alarm", soon);
    es.addEventListener("resync", function () { es.close(); setTimeout(connect, 500); });
    es.addEventListener("logout", function () { es.close(); location.href = "/login"; });
  }
  load();
  connect();
})();
