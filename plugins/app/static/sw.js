// firebus app service worker (scope /-/plugins/app/).
//
// * The shell (page, modules, styles, icons, manifest) is stored at install; it is still asked
//   of the network first, so a new release shows at the next load, and the stored copy is used
//   when the network fails.
// * JSON answers (the core's /api/…, the plugins' …/api/… and *.json) are network first; each
//   good answer is stored with the time it was fetched (header x-firebus-stored), which is how
//   the page knows it is showing an old state and since when.  The event stream and every write
//   go straight to the network: an acknowledgement is never faked or queued here.
// * A push message shows a notification; a click opens the alarm in the app.
const VERSION = "2";
const SHELL = "firebus-app-shell-" + VERSION;
const DATA = "firebus-app-data";
const BASE = "/-/plugins/app/";
const PRECACHE = [
  BASE, BASE + "manifest.webmanifest",
  ...["app.js", "dom.js", "i18n.js", "net.js", "alarms.js", "hazards.js", "more.js", "push.js", "app.css",
      "icon-192.png", "icon-512.png", "icon-maskable-512.png"].map((n) => BASE + "static/" + n),
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((c) => c.addAll(PRECACHE)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("firebus-app-shell-") && name !== SHELL) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

function isData(url) {
  if (url.pathname === "/api/events" || url.pathname.includes("/api/photos/")) return false;
  if (url.pathname.startsWith("/api/")) return true;
  return url.pathname.startsWith("/-/plugins/") && (url.pathname.includes("/api/") || url.pathname.endsWith(".json"));
}

function isShell(url) {
  return url.pathname.startsWith(BASE) && !url.pathname.startsWith(BASE + "a/") && !url.pathname.startsWith(BASE + "api/")
    && url.pathname !== BASE + "sw.js";
}

const OFFLINE = JSON.stringify({ error: { code: "offline", message: "offline, and nothing stored for this request",
  message_zh: "离线，且没有此项的缓存数据" } });

async function fromNetwork(request, cacheName, stamp) {
  try {
    const response = await fetch(request);
    if (response.ok && response.type === "basic") {
      const headers = new Headers(response.headers);
      if (stamp) headers.set("x-firebus-stored", String(Date.now()));
      const copy = new Response(await response.clone().blob(), { status: response.status, statusText: response.statusText, headers });
      await (await caches.open(cacheName)).put(request, copy);  // stored before the page sees it: offline next time shows this
    } else if (response.status === 401) {
      await caches.delete(DATA);  // signed out: the next person on this phone must not see the last one's data
    }
    return response;
  } catch (e) {
    const stored = await caches.match(request, { cacheName }) ||
      (request.mode === "navigate" ? await caches.match(BASE, { cacheName: SHELL }) : undefined);
    if (stored) return stored;
    if (request.mode === "navigate") return Response.error();
    return new Response(OFFLINE, { status: 503, headers: { "content-type": "application/json", "x-firebus-offline": "1" } });
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (isData(url)) event.respondWith(fromNetwork(request, DATA, true));
  else if (isShell(url)) event.respondWith(fromNetwork(request, SHELL, false));
});

// -- push -------------------------------------------------------------------------------------
self.addEventListener("push", (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = { body: event.data ? event.data.text() : "" }; }
  const alarm = data.alarm_id || data.alarm || "";
  const url = data.url || data.link || (alarm ? BASE + "?alarm=" + encodeURIComponent(alarm) : BASE);
  event.waitUntil(self.registration.showNotification(data.title || "firebus", {
    body: data.body || data.message || data.text || "",
    tag: data.tag || alarm || undefined,  // a later message of the same alarm replaces the earlier one
    renotify: !!(data.tag || alarm),
    requireInteraction: data.category === "fire",  // a fire stays on the screen until it is looked at
    icon: BASE + "static/icon-192.png",
    badge: BASE + "static/icon-192.png",
    image: data.image || undefined,  // the alarm's still (a signed link), where the platform shows images
    data: { url },
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = new URL((event.notification.data && event.notification.data.url) || BASE, self.location.origin).href;
  event.waitUntil((async () => {
    const open = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const mine = open.find((c) => new URL(c.url).pathname.startsWith(BASE));
    if (mine) {
      try {
        await mine.navigate(url);  // only a page this worker controls can be sent elsewhere
        return await mine.focus();
      } catch (e) { /* not controlled: open a new window below */ }
    }
    return self.clients.openWindow(url);
  })());
});
