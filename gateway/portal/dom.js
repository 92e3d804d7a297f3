// Small DOM helpers. Every text goes in through textContent or attributes,
// never parsed as HTML, so nothing a listing holds can become markup.

/** h builds an element: h("a", {href: "#/x", class: "c", onclick: fn}, "text", child…). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "value" && "value" in el) el.value = v;
    else if (k === "checked" || k === "selected" || k === "disabled" || k === "hidden") el[k] = !!v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** $ finds an element by id. */
export const $ = (id) => document.getElementById(id);

/** uid returns a new element id (for label/for pairs). */
let n = 0;
export const uid = (p) => `${p}-${++n}`;

/** option builds an <option>. */
export const option = (value, label, selected) => h("option", { value, selected: !!selected }, label);

/** announce says something to screen readers and shows it in the flash area. */
export function flash(text, kind) {
  const el = $("flash");
  el.replaceChildren(text ? h("p", { class: kind === "bad" ? "msg bad" : "msg ok" }, text) : "");
}

let pending = ["", ""];

/** go navigates to a hash route, with a message to show when it is there. */
export function go(hash, message, kind) {
  pending = [message || "", kind || ""];
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}

/** takeFlash returns (and forgets) the message go left for the next view. */
export function takeFlash() {
  const p = pending;
  pending = ["", ""];
  return p;
}
