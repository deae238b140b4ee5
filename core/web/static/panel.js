// firebus panel: live alarm list over server-sent events, alarm actions, device chart.
// Plain JS, no build step.  All data comes from the JSON API; the server already
// cut it to the user's units.
(function () {
  "use strict";
  var dataEl = document.getElementById("page-data");
  if (!dataEl) return;
  var page = JSON.parse(dataEl.textContent);
  if (page.view === "console") return;  // console.js runs that page (its own stream)
  var S = page.strings;
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "cls") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }
  // Times are shown in the site's zone (as the server renders them), whatever the viewer's zone.
  var zoneFmt = null;
  try {
    zoneFmt = new Intl.DateTimeFormat("en-CA", { timeZone: page.tz || undefined, year: "numeric", month: "2-digit",
      day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  } catch (e) { zoneFmt = null; }
  function parts(ts) {
    var out = {};
    if (zoneFmt) {
      zoneFmt.formatToParts(new Date(ts * 1000)).forEach(function (p) { out[p.type] = p.value; });
    } else {
      var d = new Date(ts * 1000), p2 = function (n) { return (n < 10 ? "0" : "") + n; };
      out = { year: d.getFullYear(), month: p2(d.getMonth() + 1), day: p2(d.getDate()), hour: p2(d.getHours()),
              minute: p2(d.getMinutes()), second: p2(d.getSeconds()) };
    }
    return out;
  }
  function fmtTime(ts) {
    if (!ts) return "—";
    var p = parts(ts);
    return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + ":" + p.second;
  }
  function fmtValue(v, unit) {
    if (v === null || v === undefined) return "—";
    if (typeof v === "number" && !Number.isInteger(v)) v = Math.round(v * 1000) / 1000;
    return (String(v) + " " + (unit || "")).trim();
  }
  function api(method, url, body) {
    var opts = { method: method, headers: { "Accept": "application/json" }, credentials: "same-origin" };
    if (method !== "GET") {
      opts.headers["X-CSRF-Token"] = csrf;
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body || {});
    }
    return fetch(url, opts).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) throw new Error((j.error && j.error.message) || r.status);
        return j;
      });
    });
  }

  // -- sound cue for new fire alarms (WebAudio: no file to fetch) ------------------------
  var soundBtn = document.getElementById("sound");
  var soundOn = localStorage.getItem("firebus.sound") === "on";
  var audio = null;
  function setSoundLabel() { if (soundBtn) soundBtn.textContent = soundOn ? S.sound_off : S.sound_on; }
  if (soundBtn) {
    soundBtn.hidden = false;
    setSoundLabel();
    soundBtn.addEventListener("click", function () {
      soundOn = !soundOn;
      localStorage.setItem("firebus.sound", soundOn ? "on" : "off");
      setSoundLabel();
      if (soundOn) beep(1);
    });
  }
  function beep(times) {
    if (!soundOn) return;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      for (var i = 0; i < times; i++) {
        var osc = audio.createOscillator(), gain = audio.createGain(), t0 = audio.currentTime + i * 0.5;
        osc.type = "square"; osc.frequency.value = 880;
        gain.gain.setValueAtTime(0.2, t0); gain.gain.setValueAtTime(0, t0 + 0.3);
        osc.connect(gain); gain.connect(audio.destination); osc.start(t0); osc.stop(t0 + 0.35);
      }
    } catch (e) { /* no audio device: the banner still shows */ }
  }
  var banner = document.getElementById("banner");
  function announce(ev) {
    if (!banner) return;
    banner.hidden = false;
    banner.textContent = (S["cat_" + ev.category] || ev.category) + " · " + (ev.unit_name || "") + " " +
      (ev.location_path || "") + " · " + (ev.device_name || "") + " " + fmtValue(ev.value, ev.point_unit);
    clearTimeout(announce.timer);
    announce.timer = setTimeout(function () { banner.hidden = true; }, 30000);
  }

  // -- the alarm table ----------------------------------------------------------------
  var rowsEl = document.getElementById("alarm-rows");
  var fresh = {};
  function actionButton(label, cls, alarm, action, extra) {
    var b = el("button", { cls: "act " + cls, type: "button", "data-action": action, "data-alarm": alarm.id, text: label });
    b.addEventListener("click", function () {
      b.disabled = true;
      api("POST", "/api/alarms/" + encodeURIComponent(alarm.id) + "/" + action, extra || {})
        .then(loadAlarms).catch(function (e) { b.disabled = false; alert(e.message); });
    });
    return b;
  }
  function renderAlarms(list) {
    if (!rowsEl) return;
    rowsEl.textContent = "";
    if (!list.items.length) {
      rowsEl.appendChild(el("tr", {}, [el("td", { colspan: "7", cls: "muted", text: S.no_alarms })]));
      return;
    }
    list.items.forEach(function (a) {
      var actions = el("td", {});
      if (page.can_act) {
        if (!a.acknowledged) actions.appendChild(actionButton(S.ack, "ack", a, "ack"));
        if (a.active && !a.silenced) actions.appendChild(actionButton(S.silence, "silence", a, "silence"));
        if (a.category === "fire") {
          ["real_fire", "false_alarm", "test"].forEach(function (v) {
            actions.appendChild(actionButton(S[v] + (a.verdict === v ? " ✓" : ""), "verdict", a, "verdict", { verdict: v }));
          });
        }
      }
      var status = S["st_" + a.status] + (a.silenced ? " · " + S.silenced : "");
      var tr = el("tr", { cls: "row-" + a.category + (a.active ? "" : " cleared") + (fresh[a.id] ? " flash" : ""), "data-alarm": a.id, "data-status": a.status }, [
        el("td", {}, [el("a", { href: "/alarms/" + a.id, text: fmtTime(a.start_ts) })]),
        el("td", {}, [el("span", { cls: "cat cat-" + a.category, text: S["cat_" + a.category] || a.category })]),
        el("td", {}, [(a.unit_name ? a.unit_name + " · " : "") + (a.location_path || "—")]),
        el("td", {}, [a.device_id ? el("a", { href: "/devices/" + a.device_id, text: a.device_name || a.device_id }) : "—",
                      a.message ? el("div", { cls: "muted", text: a.message }) : null]),
        el("td", { cls: "val", text: fmtValue(a.last_value, a.point_unit) }),
        el("td", { cls: "status", text: status }),
        actions,
      ]);
      rowsEl.appendChild(tr);
    });
    fresh = {};
  }
  function loadAlarms() {
    if (!rowsEl) return Promise.resolve();
    var status = page.status || "open";
    return api("GET", "/api/alarms?limit=200&status=" + status).then(renderAlarms);
  }

  // -- overview counts ------------------------------------------------------------------
  function loadUnits() {
    var box = document.getElementById("units");
    if (!box) return;
    api("GET", "/api/units").then(function (data) {
      data.items.forEach(function (u) {
        var card = box.querySelector('[data-unit="' + (u.id || "") + '"]');
        if (!card) return;
        ["alarm", "fault", "offline", "never_reported", "normal"].forEach(function (k) {
          var b = card.querySelector('[data-count="' + k + '"]');
          if (b) b.textContent = u.counts[k];
        });
      });
    });
  }

  // -- device page: live values, alarms, chart ---------------------------------------------
  function updatePoint(ev) {
    var row = document.querySelector('tr[data-point="' + ev.point_id + '"]');
    if (!row) return;
    var cell = row.querySelector(".val");
    cell.textContent = ev.fault ? ev.fault : fmtValue(ev.value, cell.getAttribute("data-unit"));
    row.querySelector(".ts").textContent = fmtTime(ev.ts);
    var last = document.getElementById("device-last-report");
    if (last) last.textContent = fmtTime(ev.ts);
    var chartPoint = document.getElementById("chart-point");
    if (chartPoint && chartPoint.value === ev.point_id) scheduleChart();
  }
  function reloadDevice() {
    api("GET", "/api/devices/" + encodeURIComponent(page.device_id)).then(function (d) {
      var st = document.getElementById("device-status");
      if (st) { st.className = "st st-" + d.status; st.textContent = d.status === "alarm" ? S.in_alarm : S[d.status]; }
      var body = document.getElementById("device-alarms");
      if (!body) return;
      body.textContent = "";
      d.alarms.forEach(function (a) {
        body.appendChild(el("tr", {}, [
          el("td", {}, [el("a", { href: "/alarms/" + a.id, text: fmtTime(a.start_ts) })]),
          el("td", {}, [el("span", { cls: "cat cat-" + a.category, text: S["cat_" + a.category] || a.category })]),
          el("td", { text: a.message || "" }),
          el("td", { text: fmtValue(a.last_value, a.point_unit) }),
          el("td", { text: S["st_" + a.status] }),
        ]));
      });
    });
  }

  var SVGNS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    var n = document.createElementNS(SVGNS, tag);
    for (var k in attrs) n.setAttribute(k, attrs[k]);
    return n;
  }
  function num(v) { return v === true ? 1 : v === false ? 0 : (typeof v === "number" ? v : null); }
  var chartTimer = null;
  function scheduleChart() { clearTimeout(chartTimer); chartTimer = setTimeout(drawChart, 500); }
  function drawChart() {
    var box = document.getElementById("chart");
    var pointSel = document.getElementById("chart-point");
    var rangeSel = document.getElementById("chart-range");
    if (!box || !pointSel || !pointSel.value) return;
    var until = Date.now() / 1000, since = until - Number(rangeSel.value);
    api("GET", "/api/points/" + encodeURIComponent(pointSel.value) + "/history?since=" + since.toFixed(3) + "&until=" + until.toFixed(3))
      .then(function (h) { renderChart(box, h, since, until); })
      .catch(function (e) { box.textContent = e.message; });
  }
  function renderChart(box, h, since, until) {
    var series = [], band = [];
    if (h.step === "raw") {
      // Readings are stored on change: the value holds until the next one (a step line).
      if (h.before && num(h.before.value) !== null) series.push([since, num(h.before.value)]);
      h.points.forEach(function (p) {
        var v = num(p.value);
        if (v === null) return;
        if (series.length) series.push([p.ts, series[series.length - 1][1]]);
        series.push([p.ts, v]);
      });
      if (series.length) series.push([until, series[series.length - 1][1]]);
    } else {
      h.points.forEach(function (p) {
        if (p.mean === null) return;
        series.push([p.ts, p.mean]);
        band.push([p.ts, p.min, p.max]);
      });
    }
    box.textContent = "";
    var W = 800, H = 260, L = 50, R = 10, T = 10, B = 28;
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": h.point.name, "data-step": h.step, "data-points": String(series.length) });
    box.appendChild(root);
    if (!series.length) {
      var empty = svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" });
      empty.textContent = S.no_data;
      root.appendChild(empty);
      return;
    }
    var lo = Infinity, hi = -Infinity;
    series.forEach(function (p) { lo = Math.min(lo, p[1]); hi = Math.max(hi, p[1]); });
    band.forEach(function (b) { lo = Math.min(lo, b[1]); hi = Math.max(hi, b[2]); });
    if (lo === hi) { lo -= 1; hi += 1; }
    var pad = (hi - lo) * 0.08; lo -= pad; hi += pad;
    var x = function (t) { return L + (t - since) / (until - since) * (W - L - R); };
    var y = function (v) { return T + (hi - v) / (hi - lo) * (H - T - B); };
    for (var i = 0; i <= 4; i++) {
      var v = lo + (hi - lo) * i / 4, yy = y(v);
      root.appendChild(svg("line", { x1: L, x2: W - R, y1: yy, y2: yy, "class": "grid" }));
      var lab = svg("text", { x: L - 4, y: yy + 4, "text-anchor": "end" });
      lab.textContent = (Math.abs(hi - lo) < 10 ? v.toFixed(2) : v.toFixed(0));
      root.appendChild(lab);
    }
    for (var j = 0; j <= 4; j++) {
      var t = since + (until - since) * j / 4, tp = parts(t);
      var txt = (until - since) > 2 * 86400 ? tp.month + "-" + tp.day : tp.hour + ":" + tp.minute;
      var tl = svg("text", { x: x(t), y: H - 8, "text-anchor": j === 0 ? "start" : j === 4 ? "end" : "middle" });
      tl.textContent = txt;
      root.appendChild(tl);
    }
    root.appendChild(svg("line", { x1: L, x2: L, y1: T, y2: H - B, "class": "axis" }));
    root.appendChild(svg("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, "class": "axis" }));
    if (band.length > 1) {
      var up = band.map(function (b) { return x(b[0]).toFixed(1) + "," + y(b[2]).toFixed(1); });
      var down = band.slice().reverse().map(function (b) { return x(b[0]).toFixed(1) + "," + y(b[1]).toFixed(1); });
      root.appendChild(svg("polygon", { points: up.concat(down).join(" "), "class": "band" }));
    }
    root.appendChild(svg("polyline", { points: series.map(function (p) { return x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1); }).join(" "), "class": "line" }));
  }

  // -- the event stream -----------------------------------------------------------------
  var live = document.getElementById("live");
  var refreshTimer = null;
  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(function () {
      loadAlarms();
      if (page.view === "overview") loadUnits();
      if (page.view === "device") reloadDevice();
    }, 150);
  }
  function connect() {
    var types = page.view === "device" ? "alarm,state,availability" : "alarm,availability";
    var es = new EventSource("/api/events?types=" + types);
    es.addEventListener("open", function () {
      if (live) { live.hidden = false; live.className = "live"; live.textContent = "● " + S.live; }
      refreshSoon();  // catch up on anything missed while disconnected
    });
    es.addEventListener("error", function () {
      if (live) { live.className = "live down"; live.textContent = "● " + S.disconnected; }
    });
    es.addEventListener("alarm", function (m) {
      var ev = JSON.parse(m.data);
      if (ev.transition === "new") {
        fresh[ev.alarm_id] = true;
        if (ev.category === "fire") { beep(3); announce(ev); }
      }
      if (page.view === "device" && ev.device_id !== page.device_id) return;
      refreshSoon();
    });
    es.addEventListener("availability", function (m) {
      var ev = JSON.parse(m.data);
      if (page.view === "device" && ev.device_id !== page.device_id) return;
      refreshSoon();
    });
    es.addEventListener("state", function (m) {
      var ev = JSON.parse(m.data);
      if (page.view === "device" && ev.device_id === page.device_id) updatePoint(ev);
    });
    es.addEventListener("resync", function () { es.close(); setTimeout(connect, 500); });
    es.addEventListener("logout", function () { es.close(); location.href = "/login"; });
  }

  loadAlarms();
  if (page.view === "device") {
    document.getElementById("chart-point").addEventListener("change", drawChart);
    document.getElementById("chart-range").addEventListener("change", drawChart);
    drawChart();
  }
  connect();
})();
