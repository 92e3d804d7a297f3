// One listing of any park: its own (from the park's services) or a peer's
// (fresh from the peer, else the club index's copy marked stale).
import { h, go } from "./dom.js";
import { get, call, collection, kindOf } from "./api.js";
import { t, vocab, when, country, errorText, list, number } from "./i18n.js";
import { parkName, isOwn, canEdit, visibilityText } from "./state.js";

export async function listingView(view, r) {
  const [park, coll, id] = r.parts;
  if (!park || !kindOf(coll) || !id) throw Object.assign(new Error("not found"), { code: "not_found" });
  const ans = await get(`/api/v1/club/${encodeURIComponent(park)}/${coll}/${encodeURIComponent(id)}`);
  const l = ans.listing;
  view.replaceChildren(detail(l, ans));
}

function row(label, ...value) {
  const v = value.flat().filter((x) => x !== "" && x !== null && x !== undefined);
  if (!v.length) return "";
  return [h("dt", {}, label), h("dd", {}, v)];
}

const tags = (xs, group) => (xs || []).map((x) => h("span", { class: "tag" }, vocab(group, x)));

function website(u) {
  if (!u) return "";
  return /^https?:\/\//i.test(u) ? h("a", { href: u, rel: "noopener noreferrer nofollow", target: "_blank", class: "website" }, u) : u;
}

function detail(l, ans) {
  const a = l.attrs || {};
  const own = isOwn(l);
  const rows = [
    row(t("detail.origin"), h("span", { class: "park-name", id: "origin-park" }, parkName(l.park))),
    row(t("detail.location"), [l.city, country(l.country)].filter(Boolean).join(" · ")),
    row(t("field.sectors"), tags(l.sectors, "sector")),
    row(t("field.tags"), (l.tags || []).map((x) => h("span", { class: "tag plain" }, x))),
    row(t("field.seeking"), tags(l.seeking, "need")),
    row(t("field.offering"), tags(l.offering, "need")),
  ];
  switch (l.kind) {
    case "organization":
      rows.push(row(t("field.attrs.org_type"), a.org_type ? vocab("org_type", a.org_type) : ""),
        row(t("field.attrs.website"), website(a.website)),
        row(t("field.attrs.founded"), a.founded ? String(a.founded) : ""),
        row(t("field.attrs.size"), a.size ? vocab("size", a.size) : ""));
      break;
    case "project":
      rows.push(row(t("field.attrs.stage"), a.stage ? vocab("stage", a.stage) : ""),
        row(t("field.attrs.trl"), a.trl ? String(a.trl) : ""),
        row(t("field.attrs.funding_ask.amount"), a.funding_ask ? t("detail.funding", { amount: number(a.funding_ask.amount), currency: vocab("currency", a.funding_ask.currency) }) : ""),
        row(t("field.attrs.owner_org"), a.owner_org || ""),
        row(t("field.attrs.landing_preference"), list((a.landing_preference || []).map(parkName))));
      break;
    case "talent":
      rows.push(row(t("field.attrs.expertise"), list(a.expertise)),
        row(t("field.attrs.languages"), list(a.languages)),
        row(t("field.attrs.availability"), tags(a.availability, "availability")),
        row(t("field.attrs.affiliation"), a.affiliation || ""),
        row(t("field.attrs.years_experience"), a.years_experience ? String(a.years_experience) : ""),
        row(t("detail.contact"), contact(a)));
      break;
  }
  rows.push(row(t("detail.updated"), h("time", { datetime: l.updated_at, id: "updated-at" }, when(l.updated_at))),
    row(t("detail.created"), when(l.created_at)),
    row(t("detail.version"), String(l.version)));
  if (own) rows.push(row(t("field.visibility"), visibilityText(l)));

  const actions = own && canEdit() ? editActions(l) : !own && canEdit() ? expressAction(l) : "";
  return h("article", { class: "card detail", id: "listing", "data-id": l.id },
    h("p", {}, h("a", { href: "#/search", onclick: back }, "← " + t("detail.back"))),
    h("div", { class: "badges" },
      h("span", { class: "badge kind" }, t("kind." + l.kind)),
      own ? h("span", { class: "badge vis vis-" + l.visibility, id: "visibility" }, visibilityText(l)) : "",
      ans.stale ? h("span", { class: "badge status-stale", id: "stale-badge" }, t("detail.stale_badge")) : ""),
    h("h1", { id: "listing-title" }, l.title),
    ans.stale ? h("p", { class: "msg warn", role: "note" }, t("detail.stale", { t: when(ans.as_of) })) : "",
    l.summary ? h("p", { class: "summary", id: "listing-summary" }, l.summary) : "",
    h("dl", { class: "facts" }, rows),
    actions);
}

function back(e) {
  if (history.length > 1) { e.preventDefault(); history.back(); }
}

function contact(a) {
  const c = a.contact;
  if (!c || (!c.email && !c.phone)) return h("span", { class: "muted", id: "contact" }, t("detail.no_contact"));
  return h("span", { id: "contact" },
    c.email ? h("a", { href: "mailto:" + c.email }, c.email) : "",
    c.email && c.phone ? " · " : "",
    c.phone ? h("a", { href: "tel:" + c.phone.replace(/[^+0-9]/g, "") }, c.phone) : "");
}

function editActions(l) {
  const coll = collection(l.kind);
  const msg = h("p", { class: "msg bad", role: "alert", hidden: true, id: "withdraw-error" });
  const confirm = h("div", { class: "confirm", hidden: true },
    h("button", { type: "button", class: "danger", id: "withdraw-confirm", onclick: withdraw }, t("detail.withdraw_confirm")),
    h("button", { type: "button", onclick: () => { confirm.hidden = true; start.hidden = false; start.focus(); } }, t("detail.withdraw_cancel")));
  const start = h("button", { type: "button", id: "withdraw", onclick: () => { start.hidden = true; confirm.hidden = false; confirm.querySelector("button").focus(); } }, t("detail.withdraw"));
  async function withdraw() {
    try {
      await call("DELETE", `/api/v1/${coll}/${encodeURIComponent(l.id)}`, { headers: { "If-Match": `"${l.version}"` } });
      go("#/search", t("detail.withdrawn"));
    } catch (e) {
      msg.hidden = false;
      msg.textContent = e.status === 412 ? t("error.precondition_failed") : errorText(e);
    }
  }
  return h("div", { class: "actions" }, h("a", { class: "button", id: "edit", href: `#/edit/${coll}/${encodeURIComponent(l.id)}` }, t("detail.edit")),
    start, confirm, msg);
}

/** expressAction offers an editor to express interest in a peer's listing. */
function expressAction(l) {
  return h("div", { class: "actions" },
    h("a", { class: "button", id: "express-interest", href: `#/express/${encodeURIComponent(l.park)}/${collection(l.kind)}/${encodeURIComponent(l.id)}` }, t("interest.express")),
    h("span", { class: "muted small" }, t("interest.express_help")));
}
