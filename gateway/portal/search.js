// Club and local search: filters, facets with counts, each park's
// freshness, paging with the API's cursor. The filters live in the hash
// (#/search?q=…&sectors=…), so a reload or the back button keeps them.
import { h, uid, option, go } from "./dom.js";
import { get, collection } from "./api.js";
import { t, vocab, when, country, errorText, list as join, colon } from "./i18n.js";
import { VOCAB, parkName, isOwn, visibilityText } from "./state.js";

// The filters the form and the facets set, each one value, as the API names them.
const FILTERS = ["kinds", "parks", "sectors", "country", "seeking", "offering", "stage", "availability", "org_type"];

/** searchHash is the route of a search with params p. */
export const searchHash = (p) => "#/search" + (p.toString() ? "?" + p.toString() : "");

export async function searchView(view, r) {
  const p = new URLSearchParams(r.params);
  if (!p.get("scope")) p.set("scope", "club");
  const club = p.get("scope") === "club";
  const results = [];
  let cursor = "";
  // The server's facet counts (every match of the query), asked with the
  // first page: they do not change with the cursor.
  let served = null;

  const list = h("ol", { id: "results", class: "results" });
  const count = h("p", { id: "result-count", class: "muted", "aria-live": "polite" });
  const fresh = h("div", { id: "freshness" });
  const facets = h("aside", { id: "facets", class: "facets" });
  const more = h("button", { id: "more", type: "button", hidden: true }, t("search.more"));
  const error = h("p", { id: "search-error", class: "msg bad", role: "alert", hidden: true });

  async function page() {
    const q = new URLSearchParams();
    for (const k of ["q", "scope", "mode", ...FILTERS]) if (p.get(k)) q.set(k, p.get(k));
    if (!club) { q.delete("mode"); q.delete("parks"); }
    q.set("limit", "20");
    if (cursor) q.set("cursor", cursor); else q.set("facets", "all");
    more.disabled = true;
    try {
      const ans = await get("/api/v1/search?" + q);
      error.hidden = true;
      if (!cursor && ans.facets) served = ans;
      results.push(...(ans.results || []));
      for (const l of ans.results || []) list.append(card(l));
      cursor = ans.next_cursor || "";
      more.hidden = !cursor;
      count.textContent = results.length === 0 ? t("search.none") : t(cursor ? "search.count_more" : "search.count", { n: results.length });
      fresh.replaceChildren(freshness(ans));
      facets.replaceChildren(...facetGroups(results, ans, served, p, club));
    } catch (e) {
      error.hidden = false;
      error.textContent = errorText(e);
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener("click", page);

  view.replaceChildren(
    h("h1", { class: "visually-hidden" }, t("search.title")),
    searchForm(p),
    activeFilters(p),
    error,
    h("div", { class: "search-layout" }, facets, h("section", { class: "search-main", "aria-labelledby": "results-h" },
      h("h2", { id: "results-h", class: "visually-hidden" }, t("search.title")), fresh, count, list, more)));
  await page();
}

function searchForm(p) {
  const q = uid("q"), scope = uid("scope"), kinds = uid("kinds"), sectors = uid("sectors"), live = uid("live");
  const form = h("form", { id: "search", class: "search-form", role: "search" },
    h("div", { class: "field grow" }, h("label", { for: q }, t("search.q")),
      h("input", { id: q, name: "q", type: "search", value: p.get("q") || "", maxlength: 200, placeholder: t("search.q_placeholder") })),
    h("div", { class: "field" }, h("label", { for: scope }, t("search.scope")),
      h("select", { id: scope, name: "scope" }, option("club", t("search.scope.club"), p.get("scope") === "club"),
        option("local", t("search.scope.local"), p.get("scope") === "local"))),
    h("div", { class: "field" }, h("label", { for: kinds }, t("facet.kind")),
      h("select", { id: kinds, name: "kinds" }, option("", t("filter.any")),
        VOCAB.kind.map((k) => option(collection(k), t("kind." + k), p.get("kinds") === collection(k))))),
    h("div", { class: "field" }, h("label", { for: sectors }, t("facet.sector")),
      h("select", { id: sectors, name: "sectors" }, option("", t("filter.any")),
        VOCAB.sector.map((s) => option(s, vocab("sector", s), p.get("sectors") === s)))),
    h("div", { class: "field check" }, h("input", { id: live, name: "mode", type: "checkbox", value: "live", checked: p.get("mode") === "live" }),
      h("label", { for: live }, t("search.live_mode"))),
    h("button", { type: "submit", id: "search-submit" }, t("search.submit")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const next = new URLSearchParams();
    const f = form.elements;
    if (f.q.value.trim()) next.set("q", f.q.value.trim());
    next.set("scope", f.scope.value);
    if (f.kinds.value) next.set("kinds", f.kinds.value);
    if (f.sectors.value) next.set("sectors", f.sectors.value);
    if (f.mode.checked && f.scope.value === "club") next.set("mode", "live");
    // Filters set from the facets stay, unless the form now sets them.
    for (const k of FILTERS) if (!next.has(k) && p.get(k) && k !== "kinds" && k !== "sectors") next.set(k, p.get(k));
    if (f.scope.value === "local") next.delete("parks");
    go(searchHash(next));
  });
  return form;
}

/** label is how a filter's value reads. */
function label(k, v) {
  switch (k) {
    case "kinds": return t("kind." + (v === "organizations" ? "organization" : v === "projects" ? "project" : "talent"));
    case "parks": return parkName(v);
    case "sectors": return vocab("sector", v);
    case "seeking": case "offering": return vocab("need", v);
    case "country": return country(v);
    default: return vocab(k, v);
  }
}

const facetTitle = { kinds: "facet.kind", parks: "facet.park", sectors: "facet.sector", country: "facet.country", seeking: "facet.seeking",
  offering: "facet.offering", stage: "facet.stage", availability: "facet.availability", org_type: "facet.org_type" };

function activeFilters(p) {
  const on = FILTERS.filter((k) => p.get(k));
  if (!on.length) return "";
  const without = (k) => { const n = new URLSearchParams(p); n.delete(k); return searchHash(n); };
  const clear = new URLSearchParams(p);
  FILTERS.forEach((k) => clear.delete(k));
  return h("div", { class: "active-filters", id: "active-filters" }, h("span", { class: "muted" }, t("search.active_filters") + colon()),
    on.map((k) => {
      const text = t(facetTitle[k]) + colon() + label(k, p.get(k));
      return h("a", { class: "chip", href: without(k), "aria-label": t("search.remove_filter", { f: text }) }, text, h("span", { "aria-hidden": "true" }, " ×"));
    }),
    h("a", { href: searchHash(clear) }, t("search.clear")));
}

// The server's facet names, as the filters (and this page) name them.
const facetParam = { sector: "sectors", country: "country", kind: "kinds", seeking: "seeking", offering: "offering",
  stage: "stage", availability: "availability", org_type: "org_type" };

/** facetGroups shows the counts by facet. The server counts every match
 * of the query (served: its first page's answer with facets, parks from
 * the club index); an older gateway sends none, and the counts are then
 * those of the results loaded so far, as the note says. */
function facetGroups(results, ans, served, p, club) {
  const counts = {};
  const add = (k, v, n = 1) => {
    if (v === undefined || v === null || v === "") return;
    (counts[k] ||= new Map()).set(v, ((counts[k] && counts[k].get(v)) || 0) + n);
  };
  if (served) {
    for (const [name, values] of Object.entries(served.facets)) {
      const k = facetParam[name];
      if (!k) continue;
      for (const [v, n] of Object.entries(values || {})) if (n > 0) add(k, k === "kinds" ? collection(v) : v, n);
    }
  } else for (const l of results) {
    add("kinds", collection(l.kind));
    (l.sectors || []).forEach((s) => add("sectors", s));
    add("country", l.country);
    (l.seeking || []).forEach((s) => add("seeking", s));
    (l.offering || []).forEach((s) => add("offering", s));
    const a = l.attrs || {};
    add("stage", a.stage);
    (a.availability || []).forEach((s) => add("availability", s));
    add("org_type", a.org_type);
  }
  let parksCapped = false;
  if (club && !p.get("mode")) {
    counts.parks = new Map(((ans.parks && ans.parks.details) || []).filter((d) => d.hits > 0).map((d) => [d.park, d.hits]));
    // Past 1,000 matches the index counts the newest only: a lower bound.
    parksCapped = ((ans.parks && ans.parks.details) || []).some((d) => d.hits_capped);
  } else {
    for (const l of results) add("parks", l.park);
  }
  const note = !served ? t("facets.note", { n: results.length })
    : served.facets_capped || served.facets_partial ? t("facets.note_capped") : t("facets.note_server");
  const groups = [h("h2", {}, t("facets.title")), h("p", { class: "muted small", id: "facets-note", "data-source": served ? "server" : "results" }, note)];
  for (const k of ["kinds", "parks", "sectors", "country", "seeking", "offering", "stage", "availability", "org_type"]) {
    const m = counts[k];
    if (!m || !m.size) continue;
    if (k === "parks" && !club) continue;
    const items = [...m.entries()].sort((a, b) => b[1] - a[1] || String(a[0]).localeCompare(String(b[0])));
    groups.push(h("section", { class: "facet", "data-facet": k },
      h("h3", {}, t(facetTitle[k])),
      h("ul", {}, items.map(([v, n]) => {
        const active = p.get(k) === v;
        const next = new URLSearchParams(p);
        if (active) next.delete(k); else next.set(k, v);
        // A filter of one kind narrows the search to it: drop a kind that contradicts it.
        if (!active && (k === "stage" || k === "availability" || k === "org_type")) next.delete("kinds");
        return h("li", {}, h("a", { href: searchHash(next), class: active ? "facet-value active" : "facet-value", "aria-current": active ? "true" : null,
          "data-value": v }, h("span", { class: "facet-label" }, label(k, v)), " ", h("span", { class: "count" }, (k === "parks" && parksCapped ? "≥" : "") + n)));
      }))));
  }
  return groups;
}

function freshness(ans) {
  const parks = ans.parks || {};
  const items = (parks.details || []).map((d) => h("li", { class: "fresh " + d.status, "data-park": d.park },
    h("span", { class: "park-name" }, parkName(d.park)), " ",
    h("span", { class: "badge status-" + d.status }, t("status." + d.status)), " ",
    h("span", { class: "muted" }, t("search.park_hits", { n: (d.hits_capped ? "≥" : "") + d.hits })),
    d.as_of && d.status !== "live" ? h("span", { class: "muted" }, " · " + t("status.as_of", { t: when(d.as_of) })) : ""));
  return h("div", {}, h("h3", { class: "small-h" }, t("search.parks")),
    h("ul", { class: "freshness" }, items),
    ans.partial ? h("p", { class: "msg warn" }, t("search.partial")) : "");
}

/** card is one result. */
export function card(l) {
  const href = `#/listing/${encodeURIComponent(l.park)}/${collection(l.kind)}/${encodeURIComponent(l.id)}`;
  const a = l.attrs || {};
  const extra = a.stage ? vocab("stage", a.stage) : a.org_type ? vocab("org_type", a.org_type) : join((a.availability || []).map((x) => vocab("availability", x)));
  return h("li", { class: "result card", "data-id": l.id, "data-park": l.park },
    h("div", { class: "result-head" },
      h("span", { class: "badge kind" }, t("kind." + l.kind)),
      h("a", { class: "result-title", href }, l.title),
      isOwn(l) ? h("span", { class: "badge vis vis-" + l.visibility }, visibilityText(l)) : ""),
    h("p", { class: "meta" }, h("span", { class: "park-name" }, parkName(l.park)), " · ", country(l.country), l.city ? " · " + l.city : "",
      extra ? " · " + extra : "", " · ", when(l.updated_at)),
    l.summary ? h("p", { class: "summary" }, l.summary.length > 180 ? l.summary.slice(0, 180) + "…" : l.summary) : "",
    h("p", { class: "tags" }, (l.sectors || []).map((s) => h("span", { class: "tag" }, vocab("sector", s))),
      (l.seeking || []).length ? h("span", { class: "tag seeking" }, t("facet.seeking") + colon() + join(l.seeking.map((s) => vocab("need", s)))) : ""));
}

