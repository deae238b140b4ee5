// Alarm page: the scene of the alarm — its still and clip (GET /api/alarms/<id>/media) and
// the live snapshots of the cameras of its place (the video plugin's /-/plugins/video/cameras).
// Words come from the sections' data-s-* attributes, rendered in the page's language.
(function () {
  "use strict";
  var media = document.getElementById("alarm-media");
  var live = document.getElementById("alarm-live");
  if (!media && !live) return;
  var page = {};
  try { page = JSON.parse(document.getElementById("page-data").textContent); } catch (e) { page = {}; }
  var fmt = null;
  try {
    fmt = new Intl.DateTimeFormat("en-CA", { timeZone: page.tz || undefined, hour: "2-digit", minute: "2-digit",
      second: "2-digit", hourCycle: "h23" });
  } catch (e) { fmt = null; }
  function hms(ts) { return ts ? (fmt ? fmt.format(new Date(ts * 1000)) : new Date(ts * 1000).toLocaleTimeString()) : ""; }
  function el(tag, attrs, kids) {
    var n = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { if (k === "text") n.textContent = attrs[k]; else n.setAttribute(k, attrs[k]); });
    (kids || []).forEach(function (c) { n.appendChild(c); });
    return n;
  }
  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); });
  }

  // -- the still and the clip ---------------------------------------------------------------
  var shown = {};
  var polls = 0;
  function showMedia(items) {
    var row = document.getElementById("alarm-media-items");
    var S = media.dataset;
    items.forEach(function (m) {
      if (shown[m.id]) return;
      shown[m.id] = true;
      var body;
      if (m.kind === "clip" || m.content_type.indexOf("video/") === 0) {
        body = el("video", { src: m.url, controls: "", preload: "metadata", playsinline: "", "data-media": m.id });
      } else {
        body = el("img", { src: m.url, alt: S.sStill, "data-media": m.id });
      }
      var caption = (m.kind === "clip" ? S.sClip : S.sStill) + " · " + hms(m.ts);
      if (m.kind === "clip" && m.start_ts && m.end_ts) caption += " (" + hms(m.start_ts) + "–" + hms(m.end_ts) + ")";
      var fig = el("figure", { "data-kind": m.kind }, [body, el("figcaption", {}, [
        document.createTextNode(caption + " · "), el("a", { href: m.url, download: "", text: S.sDownload })])]);
      row.appendChild(fig);
    });
    var pending = document.getElementById("alarm-media-pending");
    var hasClip = items.some(function (m) { return m.kind === "clip"; });
    var hasStill = items.some(function (m) { return m.kind === "still"; });
    if (hasStill && !hasClip && !pending) {
      row.appendChild(el("figure", { id: "alarm-media-pending" }, [el("figcaption", { text: S.sPending })]));
    } else if (hasClip && pending) {
      pending.remove();
    }
    media.hidden = items.length === 0;
    // A camera's clip is written ~20 s after its still: look again until it is there (≤ 2 min).
    if (hasStill && !hasClip && polls++ < 24) setTimeout(loadMedia, 5000);
  }
  function loadMedia() {
    getJSON("/api/alarms/" + encodeURIComponent(media.dataset.alarm) + "/media").then(function (j) { showMedia(j.items); })
      .catch(function () { media.hidden = true; });
  }
  if (media) loadMedia();

  // -- live snapshots of the place's cameras -----------------------------------------------------
  function refresh(img, url) {
    // Load the next picture off-screen and swap it in: no flicker, no pile-up on a slow link.
    var next = new Image();
    next.onload = function () { img.src = next.src; img.classList.remove("noframe"); setTimeout(function () { refresh(img, url); }, 1000); };
    next.onerror = function () { img.classList.add("noframe"); setTimeout(function () { refresh(img, url); }, 3000); };
    next.src = url + "?t=" + Date.now();
  }
  // The detector's open flame/smoke tracks, drawn over the picture (boxes are 0…1 of the frame).
  function drawTracks(layer, url) {
    var S = live.dataset;
    getJSON(url).then(function (j) {
      layer.textContent = "";
      j.items.forEach(function (t) {
        var b = t.box;
        var box = el("div", { "class": "track track-" + t.label, "data-track": t.track_id,
                              text: (t.label === "fire" ? S.sFire : S.sSmoke) + " " + Math.round(t.score * 100) + "%" });
        box.style.left = (b[0] * 100) + "%"; box.style.top = (b[1] * 100) + "%";
        box.style.width = ((b[2] - b[0]) * 100) + "%"; box.style.height = ((b[3] - b[1]) * 100) + "%";
        layer.appendChild(box);
      });
      setTimeout(function () { drawTracks(layer, url); }, 1000);
    }).catch(function () { setTimeout(function () { drawTracks(layer, url); }, 3000); });
  }
  function showCameras(items) {
    var row = document.getElementById("alarm-live-items");
    var S = live.dataset;
    items.forEach(function (c) {
      var img = el("img", { alt: c.name + " · " + S.sNoframe, "data-camera": c.device_id });
      var layer = el("div", { "class": "tracks", "data-tracks": c.device_id });
      var state = S["s" + c.state.charAt(0).toUpperCase() + c.state.slice(1)] || c.state;
      row.appendChild(el("figure", {}, [el("div", { "class": "cam-view" }, [img, layer]),
                                        el("figcaption", { text: c.name + " · " + state })]));
      refresh(img, c.snapshot);
      if (c.tracks) drawTracks(layer, c.tracks);
    });
    live.hidden = items.length === 0;
  }
  if (live && live.dataset.location) {
    getJSON("/-/plugins/video/cameras?location=" + encodeURIComponent(live.dataset.location))
      .then(function (j) { showCameras(j.items); })
      .catch(function () { live.hidden = true; });  // no video plugin, or no camera there
  }
})();
