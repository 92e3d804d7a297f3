// The club, live: /api/v1/stream (Server-Sent Events of CloudEvents) read
// with fetch. The last event id, the filter and the events shown are kept
// in sessionStorage: a reload, or a dropped connection, goes on right
// after the last event seen (Last-Event-ID), nothing lost, nothing twice.
import { h, uid, option } from "./dom.js";
import { collection } from "./api.js";
import { t, vocab, when, errorText } from "./i18n.js";
import { S, VOCAB, parkName } from "./state.js";
import { readSSE } from "./sse.js";

const KEY = "parkmesh-live";
const MAX = 200;

function load() {
  try { return JSON.parse(sessionStorage.getItem(KEY)) || {}; } catch { return {}; }
}
function save(st) { sessionStorage.setItem(KEY, JSON.stringify(st)); }

export async function liveView(view) {
  const st = load();
  st.filter ||= {};
  st.events ||= [];
  const list = h("ol", { id: "events", class: "events", "aria-live": "polite" });
  const state = h("p", { id: "live-state", class: "muted", role: "status" });
  const empty = h("p", { id: "live-empty", class: "muted" }, t("live.empty"));
  const draw = () => {
    list.replaceChildren(...st.events.map(item));
    empty.hidden = st.events.length > 0;
  };
  const form = filterForm(st.filter, (f) => {
    // A new filter starts from now: the events shown were another filter's.
    st.filter = f;
    st.last = "";
    st.events = [];
    save(st);
    draw();
    restart();
  });
  view.replaceChildren(h("h1", {}, t("live.title")), h("p", { class: "muted" }, t("live.intro")), form, state,
    h("p", {}, h("button", { type: "button", id: "live-clear", onclick: () => { st.events = []; save(st); draw(); } }, t("live.clear"))),
    empty, list);
  draw();

  let ctl = null;
  let stopped = false;
  let timer = 0;
  const restart = () => {
    if (ctl) ctl.abort();
    clearTimeout(timer);
    follow(0);
  };
  async function follow(attempt) {
    if (stopped) return;
    ctl = new AbortController();
    const resumed = !!st.last;
    state.textContent = t("live.state.connecting");
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(st.filter)) if (v) q.set(k, v);
    let retryIn = Math.min(1000 * 2 ** attempt, 15000);
    try {
      const headers = { Accept: "text/event-stream" };
      if (st.last) headers["Last-Event-ID"] = st.last;
      const res = await fetch("/api/v1/stream?" + q, { headers, credentials: "same-origin", cache: "no-store", signal: ctl.signal });
      if (res.status === 409) {
        // The saved position is ahead of the park's logs (restored from
        // a backup): start again from now, and say so.
        st.last = "";
        save(st);
        state.textContent = t("live.state.restarted");
        timer = setTimeout(() => follow(0), 500);
        return;
      }
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        const err = Object.assign(new Error((body.error && body.error.message) || res.statusText), { code: (body.error && body.error.code) || "unavailable" });
        if (res.status === 401) { state.textContent = t("error.unauthenticated"); return; }
        if (res.status === 400) { state.textContent = errorText(err); return; }
        const ra = Number(res.headers.get("Retry-After"));
        if (ra > 0) retryIn = ra * 1000;
        throw err;
      }
      state.textContent = t(resumed ? "live.state.resumed" : "live.state.connected");
      attempt = 0;
      await read(res.body, (id, ev) => {
        if (id) st.last = id;
        if (ev) {
          st.events.unshift(ev);
          st.events.length = Math.min(st.events.length, MAX);
          list.prepend(item(ev));
          while (list.children.length > MAX) list.lastChild.remove();
          empty.hidden = true;
        }
        save(st);
      });
    } catch (e) {
      if (e.name === "AbortError" || stopped) return;
    }
    if (stopped) return;
    state.textContent = t("live.state.reconnecting", { s: Math.round(retryIn / 1000) || 1 });
    timer = setTimeout(() => follow(attempt + 1), retryIn);
  }
  follow(0);
  return () => { stopped = true; clearTimeout(timer); if (ctl) ctl.abort(); };
}

/** read parses an SSE body; each event's id (and parsed CloudEvent) goes to on. */
async function read(body, on) {
  await readSSE(body, (id, type, data) => {
    if (type === "error") {
      // The gateway ends the stream and says from where to resume.
      try { const e = JSON.parse(data); if (e.resume_id) id = e.resume_id; } catch { /* keep the last id */ }
      on(id, null);
      return;
    }
    if (data === null) { if (id) on(id, null); return; }
    try {
      on(id, summarize(JSON.parse(data)));
    } catch { /* not a CloudEvent: skip it */ }
  });
}

/** summarize keeps what the list shows of a CloudEvent. */
function summarize(ce) {
  const l = ce.data || {};
  const type = String(ce.type || "").split(".").pop();
  return { type, time: ce.time, park: String(ce.source || "").replace(/^\/parks\//, ""), id: ce.subject, kind: l.kind || "", title: l.title || "" };
}

function item(ev) {
  const href = ev.kind && ev.type !== "withdrawn" ? `#/listing/${encodeURIComponent(ev.park)}/${collection(ev.kind)}/${encodeURIComponent(ev.id)}` : "";
  return h("li", { class: "event " + ev.type, "data-id": ev.id, "data-park": ev.park },
    h("time", { datetime: ev.time }, when(ev.time)), " ",
    h("span", { class: "badge ev-" + ev.type }, t("event." + ev.type)), " ",
    h("span", { class: "park-name" }, parkName(ev.park)), " ",
    ev.kind ? h("span", { class: "badge kind" }, t("kind." + ev.kind)) : "", " ",
    href ? h("a", { href }, ev.title || ev.id) : h("span", { class: "muted" }, ev.title || ""));
}

function filterForm(f, apply) {
  const ids = { kinds: uid("lk"), sectors: uid("ls"), seeking: uid("lse"), parks: uid("lp"), q: uid("lq") };
  const sel = (name, opts) => h("select", { id: ids[name], name }, option("", t("filter.any")), opts);
  const form = h("form", { id: "live-filter", class: "search-form" },
    h("div", { class: "field grow" }, h("label", { for: ids.q }, t("search.q")), h("input", { id: ids.q, name: "q", type: "search", value: f.q || "", maxlength: 200 })),
    h("div", { class: "field" }, h("label", { for: ids.kinds }, t("facet.kind")), sel("kinds", VOCAB.kind.map((k) => option(collection(k), t("kind." + k), f.kinds === collection(k))))),
    h("div", { class: "field" }, h("label", { for: ids.sectors }, t("facet.sector")), sel("sectors", VOCAB.sector.map((s) => option(s, vocab("sector", s), f.sectors === s)))),
    h("div", { class: "field" }, h("label", { for: ids.seeking }, t("facet.seeking")), sel("seeking", VOCAB.need.map((s) => option(s, vocab("need", s), f.seeking === s)))),
    h("div", { class: "field" }, h("label", { for: ids.parks }, t("facet.park")), sel("parks", [...S.parks.keys()].map((p) => option(p, parkName(p), f.parks === p)))),
    h("button", { type: "submit", id: "live-apply" }, t("live.apply")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const next = {};
    for (const k of ["q", "kinds", "sectors", "seeking", "parks"]) if (form.elements[k].value.trim()) next[k] = form.elements[k].value.trim();
    apply(next);
  });
  return form;
}
