// Building elements without innerHTML (nothing the server sends is ever parsed as markup),
// and times in the site's zone rather than the phone's.

export function el(tag, attrs, kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of kids || []) if (c) e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
  return e;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export function hhmm(ms, tz) {
  return new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: tz })
    .format(new Date(ms));
}

export function when(ts, tz, lang) {
  if (!ts) return "";
  return new Date(ts * 1000).toLocaleString(lang === "en" ? "en-GB" : "zh-CN", { hour12: false, timeZone: tz });
}

export function newId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
}
