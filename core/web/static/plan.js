// firebus floor plans: draw a plan with its devices coloured by state; in edit mode, drag
// devices (from the tray or on the plan) and each drop is saved (PUT, fractions 0–1).
// Used by the plan page, the alarm page (highlights the alarm's devices) and the console.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var dataEl = document.getElementById("page-data");
  var S = dataEl ? (JSON.parse(dataEl.textContent).strings || {}) : {};

  function el(tag, attrs, text) {
    var n = document.createElement(tag);
    for (var k in attrs || {}) n.setAttribute(k, attrs[k]);
    if (text) n.textContent = text;
    return n;
  }
  function send(method, url, body, type) {
    var headers = { "X-CSRF-Token": csrf, "Accept": "application/json" };
    if (type) headers["Content-Type"] = type;
    return fetch(url, { method: method, headers: headers, credentials: "same-origin", body: body }).then(function (r) {
      return r.json().then(function (j) { if (!r.ok) throw new Error((j.error && j.error.message) || r.status); return j; });
    });
  }
  function marker(d, hl) {
    var m = el("span", { "class": "dev st-" + d.status + (hl[d.id] ? " hl" : ""), "data-device": d.id, title: d.name + " · " + d.location_path }, d.name);
    return m;
  }
  function place(m, d) { m.style.left = (d.x * 100) + "%"; m.style.top = (d.y * 100) + "%"; }

  function draw(box, data, highlight, editable) {
    var hl = {}; (highlight || []).forEach(function (id) { hl[id] = true; });
    box.textContent = "";
    if (!data.image) { box.appendChild(el("p", { "class": "muted" }, S.plan_none || "")); return; }
    var plan = el("div", { "class": "plan" + (editable ? " editable" : ""), "data-place": data.place.id });
    var img = el("img", { src: data.image, alt: data.path, width: data.width, height: data.height });
    plan.appendChild(img);
    var tray = editable ? el("div", { "class": "plan-tray", "aria-label": S.plan_unplaced || "" }) : null;
    data.devices.forEach(function (d) {
      var m = marker(d, hl);
      if (d.x !== null && d.y !== null) { place(m, d); plan.appendChild(m); }
      else if (tray) tray.appendChild(m);
      if (editable) drag(m, plan, tray, data.place.id);
    });
    box.appendChild(plan);
    if (tray) { box.appendChild(el("p", { "class": "muted" }, S.plan_unplaced || "")); box.appendChild(tray); }
    box.dataset.ready = "1";
  }
  function drag(m, plan, tray, placeId) {
    m.addEventListener("pointerdown", function (ev) {
      ev.preventDefault();
      m.setPointerCapture(ev.pointerId);
      m.classList.add("dragging");
      var startParent = m.parentNode;
      function rect() { return plan.querySelector("img").getBoundingClientRect(); }
      function move(e) {
        var r = rect();
        if (m.parentNode !== plan) plan.appendChild(m);
        m.style.left = ((e.clientX - r.left) / r.width * 100) + "%";
        m.style.top = ((e.clientY - r.top) / r.height * 100) + "%";
      }
      function up(e) {
        m.removeEventListener("pointermove", move);
        m.removeEventListener("pointerup", up);
        m.classList.remove("dragging");
        var r = rect(), x = (e.clientX - r.left) / r.width, y = (e.clientY - r.top) / r.height;
        if (x < 0 || x > 1 || y < 0 || y > 1) {  // dropped off the plan: back where it was
          if (startParent === tray) { tray.appendChild(m); m.style.left = m.style.top = ""; }
          return;
        }
        m.dataset.saved = "";
        send("PUT", "/api/plans/" + encodeURIComponent(placeId) + "/devices/" + encodeURIComponent(m.dataset.device),
             JSON.stringify({ x: x, y: y }), "application/json")
          .then(function () { m.dataset.saved = "1"; var msg = document.getElementById("plan-msg"); if (msg) msg.textContent = S.plan_saved || ""; })
          .catch(function (err) { alert(err.message); });
      }
      m.addEventListener("pointermove", move);
      m.addEventListener("pointerup", up);
    });
  }
  var cache = {};
  function show(box, placeId, highlight, editable) {
    return fetch("/api/plans/" + encodeURIComponent(placeId), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (data) { cache[placeId] = data; draw(box, data, highlight, editable); return data; });
  }
  // Live colours without redrawing (a drag in progress is not disturbed).
  function recolour(box, placeId) {
    return fetch("/api/plans/" + encodeURIComponent(placeId), { credentials: "same-origin" }).then(function (r) { return r.json(); })
      .then(function (data) {
        data.devices.forEach(function (d) {
          var m = box.querySelector('.dev[data-device="' + d.id + '"]');
          if (m) m.className = m.className.replace(/\bst-\S+/, "st-" + d.status);
        });
      });
  }
  function upload(form, box, placeId) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var file = document.getElementById("plan-file").files[0];
      if (!file) return;
      send("PUT", "/api/plans/" + encodeURIComponent(placeId) + "/image", file, file.type || "application/octet-stream")
        .then(function (data) { draw(box, data, [], true); })
        .catch(function (err) { document.getElementById("plan-msg").textContent = err.message; });
    });
  }
  window.firebusPlan = { show: show, recolour: recolour, upload: upload, draw: draw };
})();
