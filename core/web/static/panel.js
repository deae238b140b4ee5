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
  var alarmClasses = {}; (page.alarm_classes || []).forEach(function (c) { alarmClasses[c] = true; });
  // Values as people read them (as core/web/human.py renders them server-side).
  function fmtValue(v, unit, cls) {
    if (v === null || v === undefined) return "—";
    cls = cls || "";
    if (v === true || v === false) {
      var key = (alarmClasses[cls] || /_alarm$/.test(cls)) ? (v ? "val_alarm" : "val_normal")
        : (/_fault$|^fault$|^tamper$/.test(cls) ? (v ? "val_fault" : "val_normal")
        : (/^(pump|fan)_state$/.test(cls) ? (v ? "val_running" : "val_stopped")
        : (cls === "valve_state" ? (v ? "val_open" : "val_closed") : (v ? "val_on" : "val_off"))));
      return S[key] || String(v);
    }
    if (typeof v === "string") return S["val_" + v] || v;
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
      (ev.location_path || "") + " · " + (ev.device_name || "") + " " + fmtValue(ev.value, ev.point_unit, ev.point_class);
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
      if (page.can_act && !a.acknowledged) {
        var pick = el("input", { type: "checkbox", cls: "pick", "data-pick": a.id, "aria-label": S.ack_selected });
        pick.addEventListener("change", syncBulk);
        actions.appendChild(pick);
      }
      if (page.can_act) {
        if (!a.acknowledged) actions.appendChild(actionButton(S.ack, "ack", a, "ack"));
        if (a.active && !a.silenced) actions.appendChild(actionButton(S.silence, "silence", a, "silence"));
        if (a.category === "fire") {
          ["real_fire", "false_alarm", "test"].forEach(function (v) {
            actions.appendChild(actionButton(S[v] + (a.verdict === v ? " ✓" : ""), "verdict", a, "verdict", { verdict: v }));
          });
        }
      }
      var status = S["st_" + a.status] + (a.silenced ? " · " + S.silenced : "") + (a.late ? " · " + S.late_alarm : "");
      var tr = el("tr", { cls: "row-" + a.category + (a.active ? "" : " cleared") + (fresh[a.id] ? " flash" : ""), "data-alarm": a.id, "data-status": a.status }, [
        el("td", {}, [el("a", { href: "/alarms/" + a.id, text: fmtTime(a.start_ts) })]),
        el("td", {}, [el("span", { cls: "cat cat-" + a.category, text: S["cat_" + a.category] || a.category })]),
        el("td", {}, [(a.unit_name ? a.unit_name + " · " : "") + (a.location_path || "—")]),
        el("td", {}, deviceLinks(a).concat([(a.text || a.message) ? el("div", { cls: "muted", text: a.text || a.message }) : null])),
        el("td", { cls: "val", text: fmtValue(a.last_value, a.point_unit, a.point_class) }),
        el("td", { cls: "status", text: status }),
        actions,
      ]);
      rowsEl.appendChild(tr);
    });
    fresh = {};
    syncBulk();
  }
  function deviceLinks(a) {
    var out = [];
    (a.devices || []).forEach(function (d, i) {
      if (i) out.push(", ");
      out.push(el("a", { href: "/devices/" + d.id, text: d.name }));
    });
    return out.length ? out : ["—"];
  }
  // -- bulk acknowledge ---------------------------------------------------------------------
  var pickAll = document.getElementById("pick-all"), ackSel = document.getElementById("ack-selected");
  function picked() { return Array.prototype.map.call(document.querySelectorAll("input[data-pick]:checked"), function (c) { return c.dataset.pick; }); }
  function syncBulk() { if (ackSel) ackSel.disabled = picked().length === 0; }
  if (pickAll) pickAll.addEventListener("change", function () {
    document.querySelectorAll("input[data-pick]").forEach(function (c) { c.checked = pickAll.checked; });
    syncBulk();
  });
  if (ackSel) ackSel.addEventListener("click", function () {
    var ids = picked();
    if (!ids.length) return;
    ackSel.disabled = true;
    api("POST", "/api/alarms/ack", { ids: ids }).then(function (r) {
      document.getElementById("bulk-msg").textContent = S.ack + ": " + r.acknowledged + " / " + ids.length;
      if (pickAll) pickAll.checked = false;
      return loadAlarms();
    }).catch(function (e) { alert(e.message); syncBulk(); });
  });
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
    cell.textContent = ev.fault ? ev.fault : fmtValue(ev.value, cell.getAttribute("data-unit"), cell.getAttribute("data-class"));
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
          el("td", { text: a.text || a.message || "" }),
          el("td", { text: fmtValue(a.last_value, a.point_unit, a.point_class) }),
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
  drawChart.first = true;
  function drawChart() {
    var box = document.getElementById("chart");
    var pointSel = document.getElementById("chart-point");
    var rangeSel = document.getElementById("chart-range");
    if (!box || !pointSel || !pointSel.value) return;
    var until = Date.now() / 1000, since = until - Number(rangeSel.value);
    var pid = encodeURIComponent(pointSel.value), q = "?since=" + since.toFixed(3) + "&until=" + until.toFixed(3);
    var csvLink = document.getElementById("chart-csv");
    if (csvLink) csvLink.href = "/api/points/" + pid + "/history.csv" + q;
    var cmpSel = document.getElementById("chart-compare");
    var cmp = cmpSel && cmpSel.value && cmpSel.value !== pointSel.value ? cmpSel.value : "";
    Promise.all([api("GET", "/api/points/" + pid + "/history" + q),
                 api("GET", "/api/points/" + pid + "/thresholds").catch(function () { return { items: [] }; }),
                 cmp ? api("GET", "/api/points/" + encodeURIComponent(cmp) + "/history" + q) : null])
      .then(function (r) {
        var h = r[0];
        if (r[2]) { h.compare = r[2]; h.compare.label = cmpSel.options[cmpSel.selectedIndex].text; }
        // A default range that shows data: a fresh point (history younger than an hour)
        // opens on the last hour rather than a day with one spike at its right edge.
        if (drawChart.first && rangeSel.value === "86400" && h.step === "raw" && !h.before && h.points.length &&
            h.points[0].ts > until - 3600) {
          drawChart.first = false; rangeSel.value = "3600"; return drawChart();
        }
        drawChart.first = false;
        h.thresholds = r[1].items; renderChart(box, h, since, until);
      })
      .catch(function (e) { box.textContent = e.message; });
  }
  function toSeries(h, since, until) {
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
    return { series: series, band: band };
  }
  function renderChart(box, h, since, until) {
    var ss = toSeries(h, since, until), series = ss.series, band = ss.band;
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
    var th = (h.thresholds || []).filter(function (t) { return typeof t.value === "number"; });
    // Levels within reach of the data are drawn (a 300 mA line over a 20 mA trace would squash it).
    th = th.filter(function (t) { return t.value <= hi + Math.max(hi - lo, Math.abs(hi)) * 1.5 + 1; });
    th.forEach(function (t) { lo = Math.min(lo, t.value); hi = Math.max(hi, t.value); });
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
    th.forEach(function (t) {
      var cls = /alarm$|level_2|^alarm/.test(t.name) && !/pre/.test(t.name) ? "alarm" : "warn";
      var yy = y(t.value), edge = t.direction === "low" ? H - B : T;
      root.appendChild(svg("rect", { x: L, width: W - L - R, y: Math.min(yy, edge), height: Math.abs(edge - yy), "class": "tband " + cls }));
      root.appendChild(svg("line", { x1: L, x2: W - R, y1: yy, y2: yy, "class": "threshold " + cls, "data-threshold": t.value }));
      var tl = svg("text", { x: W - R - 4, y: yy - 3, "text-anchor": "end", "class": "tlabel" });
      tl.textContent = (S["val_" + t.name] || t.name) + " " + t.value + (h.point.unit ? " " + h.point.unit : "");
      root.appendChild(tl);
    });
    root.setAttribute("data-thresholds", String(th.length));
    root.appendChild(svg("polyline", { points: series.map(function (p) { return x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1); }).join(" "), "class": "line" }));
    // A second point to compare, on its own scale (right axis): shapes line up, units need not.
    var other = h.compare ? toSeries(h.compare, since, until).series : [];
    if (other.length) {
      var lo2 = Infinity, hi2 = -Infinity;
      other.forEach(function (p) { lo2 = Math.min(lo2, p[1]); hi2 = Math.max(hi2, p[1]); });
      if (lo2 === hi2) { lo2 -= 1; hi2 += 1; }
      var y2 = function (v) { return T + (hi2 - v) / (hi2 - lo2) * (H - T - B); };
      root.appendChild(svg("polyline", { points: other.map(function (p) { return x(p[0]).toFixed(1) + "," + y2(p[1]).toFixed(1); }).join(" "), "class": "line2" }));
      [lo2, hi2].forEach(function (v) {
        var t2 = svg("text", { x: W - R - 2, y: y2(v) + (v === hi2 ? 10 : -3), "text-anchor": "end", "class": "axis2" });
        t2.textContent = (Math.abs(hi2 - lo2) < 10 ? v.toFixed(2) : v.toFixed(0)) + (h.compare.point.unit ? " " + h.compare.point.unit : "");
        root.appendChild(t2);
      });
      var leg = svg("text", { x: L + 6, y: T + 12, "class": "legend2" });
      leg.textContent = "— " + (h.compare.label || h.compare.point.name);
      root.appendChild(leg);
    }
    root.setAttribute("data-compare", String(other.length));
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
      if (page.view === "plan" && window.firebusPlan) window.firebusPlan.recolour(document.getElementById("plan-box"), page.place_id);
      if (page.view === "alarm" && window.firebusPlan && page.plan_place) window.firebusPlan.recolour(document.getElementById("alarm-plan"), page.plan_place);
    }, 150);
  }
  function connect() {
    if (page.view === "notifications") return;  // nothing live there
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
  if (page.view === "plan" && window.firebusPlan) {
    var planBox = document.getElementById("plan-box");
    window.firebusPlan.show(planBox, page.place_id, page.highlight, page.editable);
    var up = document.getElementById("plan-upload");
    if (up) window.firebusPlan.upload(up, planBox, page.place_id);
  }
  if (page.view === "alarm" && window.firebusPlan && page.plan_place) {
    window.firebusPlan.show(document.getElementById("alarm-plan"), page.plan_place, page.highlight, false);
  }
  // -- commissioning: adopt a discovered device; test a notification channel -------------------
  var adoptForm = document.getElementById("adopt-form");
  if (adoptForm) adoptForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    document.getElementById("adopt-button").disabled = true;
    api("POST", "/api/devices/" + encodeURIComponent(adoptForm.dataset.device) + "/adopt", {
      name: document.getElementById("adopt-name").value, device_type: document.getElementById("adopt-type").value,
      location: document.getElementById("adopt-location").value,
    }).then(function () { location.reload(); })
      .catch(function (e) { document.getElementById("adopt-msg").textContent = e.message; document.getElementById("adopt-button").disabled = false; });
  });
  document.querySelectorAll("form.test-send").forEach(function (f) {
    f.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var out = f.querySelector(".result"), addr = f.querySelector("input[name=address]").value;
      // The notify plugin's own test endpoint (system roles; it queues one message).
      api("POST", "/-/plugins/notify/channels/" + encodeURIComponent(f.dataset.channel) + "/test", addr ? { address: addr } : {})
        .then(function () { out.textContent = S.test_sent; out.className = "result ok"; })
        .catch(function (e) { out.textContent = e.message; out.className = "result err"; });
    });
  });
  if (page.view === "device") {
    document.getElementById("chart-point").addEventListener("change", drawChart);
    document.getElementById("chart-range").addEventListener("change", drawChart);
    var cmpSelect = document.getElementById("chart-compare");
    if (cmpSelect) cmpSelect.addEventListener("change", drawChart);
    drawChart();
  }
  connect();
})();
