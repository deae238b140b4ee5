// firebus hazard board: every hazard the user's units have, overdue first, with the actions their
// role may take (the server checks again: this page only offers them).
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("cfg").textContent);
  var T = cfg.text, base = cfg.base, app = document.getElementById("app");
  var MANAGE = ["admin", "integrator", "unit_manager"], WORK = MANAGE.concat(["duty_officer"]);
  var ACTIONS = { open: ["assign", "dismiss"], assigned: ["start", "submit", "assign", "dismiss"],
                  rectifying: ["submit", "assign"], submitted: ["verify", "reject"], closed: [] };
  var LABEL = { assign: ["指派", "Assign"], start: ["开始整改", "Start"], submit: ["提交整改", "Submit"],
                verify: ["复查通过", "Verify and close"], reject: ["退回", "Reject"], dismiss: ["撤销", "Dismiss"],
                comment: ["备注", "Comment"] };
  function L(a) { return LABEL[a][cfg.lang === "en" ? 1 : 0]; }
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
  function when(ts) { return ts ? new Date(ts * 1000).toLocaleString(cfg.lang === "en" ? "en-GB" : "zh-CN", { hour12: false, timeZone: cfg.tz }) : ""; }
  function allowed(action) {
    if (["assign", "verify", "reject", "dismiss"].indexOf(action) >= 0) return MANAGE.indexOf(cfg.role) >= 0;
    return WORK.indexOf(cfg.role) >= 0;
  }
  function newId() { return (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : Date.now().toString(36) + Math.random().toString(36).slice(2); }
  function shrink(file) {
    // the same rule as the patrol page: ≤ 1280 px JPEG under 60 000 bytes (the panel's body limit)
    return new Promise(function (resolve) {
      var img = new Image(), reader = new FileReader();
      reader.onload = function () { img.src = reader.result; };
      img.onload = function () {
        var side = 1280, quality = 0.8, data;
        do {
          var scale = Math.min(1, side / Math.max(img.width, img.height)), c = document.createElement("canvas");
          c.width = Math.round(img.width * scale); c.height = Math.round(img.height * scale);
          c.getContext("2d").drawImage(img, 0, 0, c.width, c.height);
          data = c.toDataURL("image/jpeg", quality);
          if (quality > 0.45) quality -= 0.1; else side = Math.round(side * 0.8);
        } while (data.length * 0.75 > 60000 && side > 200);
        var bin = atob(data.split(",")[1]), buf = new Uint8Array(bin.length);
        for (var i = 0; i < bin.length; i++) buf[i] = bin.charCodeAt(i);
        resolve(new Blob([buf], { type: "image/jpeg" }));
      };
      reader.readAsDataURL(file);
    });
  }
  function submitWithPhoto(h, row) {
    var input = row.querySelector("input[type=file]");
    var file = input && input.files && input.files[0];
    if (!file) { alert(cfg.lang === "en" ? "Add a photo of the rectification first" : "请先拍摄整改照片"); return; }
    var pid = newId();
    shrink(file).then(function (blob) {
      return fetch(base + "/api/photos/" + pid, { method: "PUT", credentials: "same-origin", body: blob,
        headers: { "Content-Type": "image/jpeg", "X-CSRF-Token": cfg.csrf } });
    }).then(function (r) { if (r.ok) act(h, "submit", row, [pid]); else alert(String(r.status)); });
  }
  function act(h, action, row, photos) {
    if (action === "submit" && !photos) { submitWithPhoto(h, row); return; }
    var body = { action: action, id: newId(), photos: photos || [] };
    var note = row.querySelector("input[name=note]"), resp = row.querySelector("input[name=responsible]");
    if (note && note.value) body.note = note.value;
    if (action === "assign") body.responsible = resp ? resp.value : "";
    fetch(base + "/api/hazards/" + encodeURIComponent(h.id) + "/actions", {
      method: "POST", credentials: "same-origin", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", "X-CSRF-Token": cfg.csrf } })
      .then(function (r) { return r.json().then(function (j) { return [r.ok, j]; }); })
      .then(function (res) {
        if (!res[0]) { alert((cfg.lang === "en" ? res[1].error.message : res[1].error.message_zh)); return; }
        load();
      });
  }
  function load() {
    fetch(base + "/api/hazards", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (j) {
      app.innerHTML = "";
      var items = j.items.slice().sort(function (a, b) { return (b.overdue - a.overdue) || (a.deadline - b.deadline); });
      if (!items.length) { app.appendChild(el("p", { class: "muted", text: T.no_hazards })); return; }
      var rows = items.map(function (h) {
        var acts = (ACTIONS[h.state] || []).filter(allowed);
        var tools = el("div", { class: "actions" }, [
          acts.length ? el("input", { name: "note", placeholder: T.note }) : null,
          acts.indexOf("submit") >= 0 ? el("input", { type: "file", accept: "image/*", capture: "environment", name: "evidence" }) : null,
          acts.indexOf("assign") >= 0 ? el("input", { name: "responsible", placeholder: T.responsible, value: h.responsible }) : null,
        ]);
        var tr = el("tr", { class: h.overdue ? "overdue" : "", "data-hazard": h.id, "data-state": h.state }, [
          el("td", { "data-label": T.created, text: when(h.created_ts) }),
          el("td", { class: h.severity === "major" ? "sev-major" : "", text: h.severity === "major" ? T.major : T.general }),
          el("td", {}, [el("div", { text: h.description }), el("div", { class: "muted", text: (h.checkpoint || h.location || "") + " · " + (h.unit || "") })]),
          el("td", { "data-label": T.state, text: T["state_" + h.state] + (h.overdue ? " · " + T.overdue : "") }),
          el("td", { "data-label": T.responsible, text: h.responsible }),
          el("td", { "data-label": T.deadline, text: when(h.deadline) }),
          el("td", {}, [tools]),
        ]);
        acts.forEach(function (a) { tools.appendChild(el("button", { type: "button", "data-action": a, text: L(a), onclick: function () { act(h, a, tr); } })); });
        return tr;
      });
      app.appendChild(el("table", { class: "board" }, [
        el("thead", {}, [el("tr", {}, [T.created, T.severity, T.description, T.state, T.responsible, T.deadline, ""].map(function (x) { return el("th", { text: x }); }))]),
        el("tbody", {}, rows)]));
    });
  }
  load();
  setInterval(load, 30000);
})();
