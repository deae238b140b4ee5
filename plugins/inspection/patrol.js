// firebus patrol page: scan a checkpoint (QR by camera, NFC tag, or typed code), record each
// item's result, photos and notes.  Records and photos go into a queue kept in localStorage and
// are sent in order when the network allows; every one carries a client-made id, so sending one
// twice is harmless (the server answers "duplicate").  No inline script: the panel's CSP forbids it.
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("cfg").textContent);
  var T = cfg.text, base = cfg.base, app = document.getElementById("app");
  var QKEY = "firebus.inspection.queue." + cfg.user, CPKEY = "firebus.inspection.checkpoints." + cfg.user;
  var MAX_PHOTO = 60000; // bytes: the panel takes bodies up to 64 KiB
  var state = { checkpoint: null, photos: [], sending: false, retry: 0, timer: null };

  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k];
      else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), attrs[k]);
      else e.setAttribute(k, attrs[k]);
    });
    (kids || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }
  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
  }
  function queue() { try { return JSON.parse(localStorage.getItem(QKEY) || "[]"); } catch (e) { return []; } }
  function saveQueue(q) { localStorage.setItem(QKEY, JSON.stringify(q)); render.status(); }
  function itemName(key) { var i = (state.catalogue || {})[key]; return i ? (cfg.lang === "en" ? i.name_en : i.name_zh) : key; }
  function itemHint(key) { var i = (state.catalogue || {})[key]; return i ? (cfg.lang === "en" ? i.hint_en : i.hint_zh) : ""; }
  function when(ts) { var d = new Date(ts * 1000); return d.toLocaleString(cfg.lang === "en" ? "en-GB" : "zh-CN", { hour12: false, timeZone: cfg.tz }); }

  function api(method, path, body, type) {
    var headers = { "X-CSRF-Token": cfg.csrf };
    if (type) headers["Content-Type"] = type;
    return fetch(base + path, { method: method, headers: headers, body: body, credentials: "same-origin" });
  }

  // -- the send queue -----------------------------------------------------------------------
  function b64ToBlob(b64, type) {
    var bin = atob(b64), buf = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) buf[i] = bin.charCodeAt(i);
    return new Blob([buf], { type: type });
  }
  function flush() {
    if (state.sending) return;
    var entry = queue().filter(function (x) { return !x.rejected; })[0];
    if (!entry) return;
    state.sending = true;
    var req = entry.kind === "photo"
      ? api("PUT", "/api/photos/" + encodeURIComponent(entry.id), b64ToBlob(entry.b64, entry.type), entry.type)
      : api("POST", "/api/records", JSON.stringify(entry.body), "application/json");
    req.then(function (r) {
      state.sending = false;
      if (r.ok) {
        var rest = queue().filter(function (x) { return x.id !== entry.id; });
        saveQueue(rest);
        state.retry = 0;
        if (entry.kind === "record") note(T.sent, "ok");
        flush();
      } else if (r.status >= 400 && r.status < 500 && r.status !== 401 && r.status !== 403 && r.status !== 408 && r.status !== 429) {
        // refused for good (unknown tag, bad field): keep it visible, do not block the others
        return r.json().catch(function () { return {}; }).then(function (j) {
          var q2 = queue();
          q2.forEach(function (x) { if (x.id === entry.id) { x.rejected = (j.error && (cfg.lang === "en" ? j.error.message : j.error.message_zh)) || String(r.status); } });
          saveQueue(q2.filter(function (x) { return x.id !== entry.id; }).concat(q2.filter(function (x) { return x.id === entry.id; })));
          note(T.rejected + ": " + (q2.filter(function (x) { return x.id === entry.id; })[0].rejected), "bad");
          if (queue().some(function (x) { return !x.rejected; })) flush();
        });
      } else { later(); }
    }).catch(function () { state.sending = false; later(); });
  }
  function later() {
    render.status();
    clearTimeout(state.timer);
    state.retry = Math.min(state.retry + 1, 6);
    state.timer = setTimeout(flush, 1000 * Math.pow(2, state.retry)); // 2 s … 64 s
  }
  window.addEventListener("online", function () { state.retry = 0; flush(); });
  window.firebusFlush = flush; // for tests and a "send now" tap

  // -- resolving a scanned code -------------------------------------------------------------
  function parseScanned(text) {
    text = (text || "").trim();
    try { var u = new URL(text); var c = u.searchParams.get("code"); if (c) return c; } catch (e) { /* not a URL */ }
    return text;
  }
  function localLookup(kind, code) {
    var list = []; try { list = JSON.parse(localStorage.getItem(CPKEY) || "[]"); } catch (e) { /* none */ }
    var norm = function (k, c) { c = String(c).trim(); return k === "qr" ? c : c.replace(/[\s:\-]/g, "").toUpperCase(); };
    for (var i = 0; i < list.length; i++) {
      if (kind === "key" && list[i].key === code) return list[i];
      for (var j = 0; j < list[i].tags.length; j++) {
        var t = list[i].tags[j];
        if (t.kind === kind && norm(kind, t.code) === norm(kind, code)) return list[i];
      }
    }
    return null;
  }
  function open(kind, code, method) {
    var q = kind === "key" ? "checkpoint=" + encodeURIComponent(code) : "kind=" + kind + "&code=" + encodeURIComponent(code);
    fetch(base + "/api/resolve?" + q, { credentials: "same-origin" }).then(function (r) {
      if (r.status === 404) { note(T.unknown_tag + ": " + code, "bad"); return null; }
      if (!r.ok) throw new Error(String(r.status));
      return r.json();
    }).then(function (cp) { if (cp) showCheckpoint(cp, kind, code, method); })
      .catch(function () {
        var cp = localLookup(kind, code); // offline: the checkpoints cached at the last visit
        if (cp) showCheckpoint(Object.assign({ due_items: cp.items }, cp), kind, code, method);
        else note(T.unknown_tag + ": " + code, "bad");
      });
  }

  // -- scanning -----------------------------------------------------------------------------
  function scanQr() {
    if (!("BarcodeDetector" in window) || !navigator.mediaDevices) { note(T.camera_none, "bad"); document.getElementById("code").focus(); return; }
    var video = el("video", { playsinline: "", autoplay: "", muted: "", id: "video" });
    var box = el("div", { class: "scanner" }, [video, el("button", { text: T.stop, type: "button", onclick: stop })]);
    var stream = null, live = true;
    function stop() { live = false; if (stream) stream.getTracks().forEach(function (t) { t.stop(); }); box.remove(); }
    app.insertBefore(box, app.firstChild);
    var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (s) {
      stream = s; video.srcObject = s;
      (function look() {
        if (!live) return;
        detector.detect(video).then(function (codes) {
          if (codes.length) { stop(); open("qr", parseScanned(codes[0].rawValue), "qr"); } else setTimeout(look, 200);
        }).catch(function () { setTimeout(look, 400); });
      })();
    }).catch(function () { stop(); note(T.camera_denied, "bad"); });
  }
  function scanNfc() {
    if (!("NDEFReader" in window)) { note(T.nfc_none, "bad"); return; }
    var reader = new window.NDEFReader();
    reader.scan().then(function () {
      note(T.nfc_ready, "ok");
      reader.onreading = function (ev) { open("nfc", ev.serialNumber, "nfc"); };
    }).catch(function () { note(T.nfc_none, "bad"); });
  }

  // -- the record form ----------------------------------------------------------------------
  function showCheckpoint(cp, kind, code, method) {
    state.checkpoint = { cp: cp, kind: kind, code: code, method: method, ts: Date.now() / 1000 };
    state.photos = [];
    var due = cp.due_items || [];
    var rows = cp.items.map(function (key) {
      var name = "r-" + key;
      return el("fieldset", { class: "item" + (due.indexOf(key) >= 0 ? " due" : ""), "data-item": key }, [
        el("legend", { text: itemName(key) }),
        el("div", { class: "hint", text: itemHint(key) }),
        el("label", {}, [el("input", { type: "radio", name: name, value: "normal", checked: "" }), document.createTextNode(" " + T.normal)]),
        el("label", {}, [el("input", { type: "radio", name: name, value: "fault" }), document.createTextNode(" " + T.fault)]),
        el("label", { class: "major" }, [el("input", { type: "checkbox", name: "m-" + key }), document.createTextNode(" " + T.major)]),
        el("input", { type: "text", name: "n-" + key, placeholder: T.note, class: "itemnote" }),
      ]);
    });
    var photoInput = el("input", { type: "file", accept: "image/*", capture: "environment", id: "photo", onchange: addPhoto });
    var form = el("form", { id: "record", onsubmit: submit }, [
      el("h2", { text: (cp.name || cp.key) }),
      el("div", { class: "where", text: cp.location + (due.length ? "" : " · " + T.all_items_done) }),
      el("div", { class: "items" }, rows),
      el("textarea", { id: "note", placeholder: T.note }),
      el("label", { class: "button" }, [document.createTextNode(T.photo), photoInput]),
      el("div", { id: "thumbs" }),
      el("button", { type: "submit", id: "submit", text: T.submit }),
    ]);
    var old = document.getElementById("record"); if (old) old.remove();
    app.insertBefore(form, document.getElementById("tasks"));
    form.scrollIntoView();
  }
  function addPhoto(ev) {
    var file = ev.target.files && ev.target.files[0];
    if (!file) return;
    var img = new Image(), reader = new FileReader();
    reader.onload = function () { img.src = reader.result; };
    img.onload = function () {
      // shrink until it fits the body limit: 1280 px, then lower quality, then smaller
      var side = 1280, quality = 0.8, data;
      do {
        var scale = Math.min(1, side / Math.max(img.width, img.height));
        var c = document.createElement("canvas");
        c.width = Math.round(img.width * scale); c.height = Math.round(img.height * scale);
        c.getContext("2d").drawImage(img, 0, 0, c.width, c.height);
        data = c.toDataURL("image/jpeg", quality);
        if (quality > 0.45) quality -= 0.1; else side = Math.round(side * 0.8);
      } while (data.length * 0.75 > MAX_PHOTO && side > 200);
      var id = newId();
      state.photos.push({ id: id, b64: data.split(",")[1] });
      document.getElementById("thumbs").appendChild(el("img", { src: data, class: "thumb", alt: "" }));
    };
    reader.readAsDataURL(file);
    ev.target.value = "";
  }
  function submit(ev) {
    ev.preventDefault();
    var cur = state.checkpoint; if (!cur) return;
    var results = cur.cp.items.map(function (key) {
      var checked = document.querySelector('input[name="r-' + key + '"]:checked');
      return { item: key, result: checked ? checked.value : "normal",
               note: document.querySelector('input[name="n-' + key + '"]').value,
               major: document.querySelector('input[name="m-' + key + '"]').checked };
    });
    var body = { id: newId(), checkpoint: cur.cp.key, method: cur.method, ts: cur.ts, results: results,
                 note: document.getElementById("note").value, photos: state.photos.map(function (p) { return p.id; }) };
    if (cur.kind !== "key") { body.tag = { kind: cur.kind, code: cur.code }; delete body.checkpoint; }
    var q = queue();
    state.photos.forEach(function (p) { q.push({ kind: "photo", id: p.id, type: "image/jpeg", b64: p.b64 }); });
    q.push({ kind: "record", id: body.id, body: body });
    try { saveQueue(q); } catch (e) { note(String(e), "bad"); return; }
    document.getElementById("record").remove();
    state.checkpoint = null;
    note(navigator.onLine ? T.saved : T.offline, "ok");
    flush();
    setTimeout(loadTasks, 500);
  }

  // -- tasks and status ---------------------------------------------------------------------
  function loadTasks() {
    fetch(base + "/api/tasks?status=open&mine=1", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (j) {
      var box = document.getElementById("tasks"); box.innerHTML = "";
      box.appendChild(el("h2", { text: T.tasks }));
      if (!j.items.length) box.appendChild(el("p", { class: "muted", text: T.no_tasks }));
      j.items.forEach(function (t) {
        box.appendChild(el("div", { class: "task", "data-task": t.id }, [
          el("div", { class: "title", text: (t.plan_name || t.plan) + " · " + T.due + " " + when(t.due) }),
          el("ul", {}, t.stops.map(function (s) {
            return el("li", { class: s.record_id ? "done" : "todo", "data-checkpoint": s.checkpoint }, [
              el("a", { href: "#", text: (s.record_id ? "✓ " : "○ ") + s.name,
                        onclick: function (e) { e.preventDefault(); open("key", s.checkpoint, "manual"); } })]);
          })),
        ]));
      });
    }).catch(function () { /* offline: keep what is shown */ });
  }
  var render = {
    status: function () {
      var q = queue(), pending = q.filter(function (x) { return !x.rejected && x.kind === "record"; }).length;
      var rejected = q.filter(function (x) { return x.rejected; }).length;
      var net = document.getElementById("net");
      net.textContent = (navigator.onLine ? T.online : T.offline.split("：")[0].split(":")[0]) +
        (pending ? " · " + pending + " " + T.queued : "") + (rejected ? " · " + rejected + " ✗" : "");
      net.setAttribute("data-pending", String(pending));
      net.className = "net " + (navigator.onLine ? "on" : "off");
    },
  };
  function note(text, kind) {
    var n = document.getElementById("note-line");
    n.textContent = text; n.className = "note-line " + (kind || "");
  }

  // -- page ---------------------------------------------------------------------------------
  app.appendChild(el("div", { id: "note-line", class: "note-line" }));
  app.appendChild(el("div", { class: "scan" }, [
    el("button", { type: "button", id: "scan-qr", text: T.scan, onclick: scanQr }),
    el("button", { type: "button", id: "scan-nfc", text: T.nfc, onclick: scanNfc }),
  ]));
  app.appendChild(el("form", { class: "manual", id: "manual", onsubmit: function (e) {
    e.preventDefault(); var input = document.getElementById("code"), v = parseScanned(input.value);
    input.value = ""; if (v) open("qr", v, "manual");
  } }, [el("input", { id: "code", placeholder: T.code, autocomplete: "off" }), el("button", { type: "submit", text: T.go })]));
  app.appendChild(el("section", { id: "tasks" }));
  window.addEventListener("offline", render.status);
  render.status();
  fetch(base + "/api/catalogue", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (j) {
    state.catalogue = {}; j.items.forEach(function (i) { state.catalogue[i.key] = i; });
    localStorage.setItem(CPKEY + ".catalogue", JSON.stringify(j.items));
  }).catch(function () {
    try { state.catalogue = {}; JSON.parse(localStorage.getItem(CPKEY + ".catalogue") || "[]").forEach(function (i) { state.catalogue[i.key] = i; }); } catch (e) { /* none */ }
  }).then(function () {
    if (cfg.code) open("qr", cfg.code, "qr"); // opened from a label by the phone's own camera app
  });
  fetch(base + "/api/checkpoints", { credentials: "same-origin" }).then(function (r) { return r.json(); })
    .then(function (j) { localStorage.setItem(CPKEY, JSON.stringify(j.items)); }).catch(function () { /* offline */ });
  loadTasks();
  flush();
})();
