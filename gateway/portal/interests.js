// Expressions of interest (docs/decisions.md, "Interests"): an editor
// expresses interest in a peer's listing; the owner park's staff accept
// (with their contact) or decline (with a note); the sender may withdraw.
// Contacts are shown only while an interest is accepted, as the API gives
// them. Routes:
//   #/express/P/KIND/ID         the form, from a peer's listing
//   #/interests?box=…&status=…  the received and sent boxes
//   #/interest/ID               one interest: answer, withdraw, contacts, audit
// The park's interest events (GET /api/v1/interests/stream) keep the
// navigation's count of new received interests and the open view current.
import { h, uid, option, go } from "./dom.js";
import { get, call, collection, kindOf } from "./api.js";
import { t, when, errorText, has, list } from "./i18n.js";
import { S, parkName, canEdit } from "./state.js";
import { readSSE } from "./sse.js";

const STATUSES = ["sent", "delivered", "accepted", "declined", "withdrawn", "expired", "refused"];

const statusBadge = (s) => h("span", { class: "badge istatus istatus-" + s, "data-status": s }, t("interest.status." + s));

/** isNew: a received interest nobody here has opened yet. */
const isNew = (i) => i.box === "received" && i.status === "delivered" && !i.opened_at;

// ---- the form -------------------------------------------------------------

/** expressView draws the form that expresses interest in a peer's listing. */
export async function expressView(view, r) {
  const [park, coll, id] = r.parts;
  if (!park || !kindOf(coll) || !id) throw Object.assign(new Error("not found"), { code: "not_found" });
  if (!canEdit()) {
    view.replaceChildren(h("p", { class: "msg bad", role: "alert" }, t("interest.not_editor")));
    return;
  }
  const [ans, orgs] = await Promise.all([
    get(`/api/v1/club/${encodeURIComponent(park)}/${coll}/${encodeURIComponent(id)}`),
    get("/api/v1/search?scope=local&kinds=organizations&limit=50").catch(() => ({ results: [] })),
  ]);
  view.replaceChildren(expressForm(ans.listing, (orgs.results || []).filter((o) => o.park === S.park.id)));
  view.querySelector("textarea").focus();
}

/** newKey: a random UUID. crypto.randomUUID needs a secure context (https
 * or localhost); a portal on plain http in a park's LAN has only
 * crypto.getRandomValues. */
function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, "0")).join("");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

function field(path, label, input, help) {
  const err = h("p", { class: "field-error", id: input.id + "-err", hidden: true });
  input.setAttribute("aria-describedby", err.id);
  input.dataset.path = path;
  return h("div", { class: "field", "data-field": path }, h("label", { for: input.id }, label), help ? h("small", { class: "muted" }, help) : "", input, err);
}

function expressForm(l, orgs) {
  const ids = { msg: uid("im"), org: uid("io"), orgName: uid("ion"), offer: uid("iof"), name: uid("icn"), email: uid("ice"), phone: uid("icp") };
  const orgSelect = h("select", { id: ids.org, name: "organization.listing_id" },
    orgs.map((o) => option(o.id, o.title)), option("", t("interest.org_other"), !orgs.length));
  const orgName = h("input", { id: ids.orgName, name: "organization.name", maxlength: 200 });
  const nameBox = field("organization.name", t("interest.org_name"), orgName);
  const syncOrg = () => { nameBox.hidden = orgSelect.value !== ""; };
  orgSelect.addEventListener("change", syncOrg);
  syncOrg();
  const general = h("div", { id: "express-error", role: "alert" });
  const submit = h("button", { type: "submit", id: "express-send" }, t("interest.send"));
  const form = h("form", { id: "express-form", class: "card edit", novalidate: true },
    h("h1", {}, t("interest.express_title")),
    h("p", { id: "express-listing" }, h("span", { class: "badge kind" }, t("kind." + l.kind)), " ",
      h("a", { href: `#/listing/${encodeURIComponent(l.park)}/${collection(l.kind)}/${encodeURIComponent(l.id)}` }, l.title),
      " · ", h("span", { class: "park-name" }, parkName(l.park))),
    h("p", { class: "muted", id: "express-privacy" }, t("interest.privacy")),
    field("message", t("interest.message"), h("textarea", { id: ids.msg, name: "message", rows: 5, maxlength: 4000, required: true })),
    h("fieldset", { class: "section" }, h("legend", {}, t("interest.organization")),
      field("organization", t("interest.org_pick"), orgSelect), nameBox),
    field("offer", t("interest.offer"), h("textarea", { id: ids.offer, name: "offer", rows: 3, maxlength: 2000 }), t("interest.offer_help")),
    h("fieldset", { class: "section", "data-field": "sender_contact" }, h("legend", {}, t("interest.your_contact")),
      h("p", { class: "muted" }, t("interest.your_contact_help")),
      field("sender_contact.name", t("interest.contact_name"), h("input", { id: ids.name, name: "sender_contact.name", maxlength: 200, value: (S.user && S.user.display_name) || "" })),
      field("sender_contact.email", t("interest.contact_email"), h("input", { id: ids.email, name: "sender_contact.email", type: "email", maxlength: 254 })),
      field("sender_contact.phone", t("interest.contact_phone"), h("input", { id: ids.phone, name: "sender_contact.phone", type: "tel", maxlength: 40 })),
      h("p", { class: "field-error", hidden: true })),
    general,
    h("div", { class: "actions" }, submit,
      h("a", { class: "button secondary", href: `#/listing/${encodeURIComponent(l.park)}/${collection(l.kind)}/${encodeURIComponent(l.id)}` }, t("edit.cancel"))));
  // One Idempotency-Key per form: a double click, or sending again after
  // a timeout, answers the interest the first send made. Sent, then
  // changed and sent again, it is refused (409) rather than sent twice.
  const key = newKey();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form, general);
    const v = (n) => form.elements[n].value.trim();
    const body = {
      listing: { park: l.park, kind: l.kind, id: l.id },
      message: form.elements.message.value,
      organization: orgSelect.value ? { listing_id: orgSelect.value } : { name: v("organization.name") },
      offer: form.elements.offer.value,
      sender_contact: { name: v("sender_contact.name"), email: v("sender_contact.email"), phone: v("sender_contact.phone") },
    };
    for (const k of ["name", "email", "phone"]) if (!body.sender_contact[k]) delete body.sender_contact[k];
    submit.disabled = true;
    try {
      const res = await call("POST", "/api/v1/interests", { body, headers: { "Idempotency-Key": key } });
      go("#/interest/" + encodeURIComponent(res.body.id), t("interest.sent_flash", { park: parkName(l.park) }));
    } catch (err) {
      if (err.status === 404 && err.field === "listing") {
        general.replaceChildren(h("p", { class: "msg bad", id: "express-refused" }, t("interest.refused_listing")));
      } else if (err.status === 429) {
        general.replaceChildren(h("p", { class: "msg bad", id: "express-refused" }, t("interest.rate_limited", { s: err.retryAfter || "60" })));
      } else if (err.status === 409 && err.field === "Idempotency-Key") {
        general.replaceChildren(h("p", { class: "msg bad", id: "express-refused" }, t("interest.sent_already"), " ",
          h("a", { href: "#/interests?box=sent" }, t("interest.box.sent"))));
      } else {
        showError(form, general, err);
      }
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function clearErrors(form, general) {
  general.replaceChildren();
  form.querySelectorAll(".field-error").forEach((p) => { p.hidden = true; p.textContent = ""; });
  form.querySelectorAll(".invalid").forEach((f) => f.classList.remove("invalid"));
  form.querySelectorAll("[aria-invalid]").forEach((i) => i.removeAttribute("aria-invalid"));
}

const friendly = (m) => (/is required/.test(m) ? t("error.required") : /needs an email or a phone/.test(m) ? t("interest.contact_needed") : m);

/** showError puts an API error at the field it names (or the nearest box). */
function showError(form, general, err) {
  const path = err.field || "";
  let box = null;
  for (let p = path; p && !box; p = p.includes(".") ? p.slice(0, p.lastIndexOf(".")) : "") {
    box = [...form.querySelectorAll(`[data-field="${CSS.escape(p)}"]`)].find((b) => !b.hidden) || null;
  }
  if (err.code === "invalid" && box) {
    const p = box.querySelector(":scope > .field-error");
    p.hidden = false;
    p.textContent = friendly(err.message);
    box.classList.add("invalid");
    const input = box.querySelector("input, select, textarea");
    if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
    general.replaceChildren(h("p", { class: "msg bad" }, t("edit.fix")));
    return;
  }
  general.replaceChildren(h("p", { class: "msg bad" }, errorText(err)));
}

// ---- the boxes ------------------------------------------------------------

/** interestsView lists a box (received by default), newest first. */
export async function interestsView(view, r) {
  const box = r.params.get("box") === "sent" ? "sent" : "received";
  const status = STATUSES.includes(r.params.get("status")) ? r.params.get("status") : "";
  const q = new URLSearchParams({ box });
  if (status) q.set("status", status);
  const ans = await get("/api/v1/interests?" + q);
  const items = ans.interests || [];
  const tab = (b) => h("a", { href: "#/interests?box=" + b, class: b === box ? "chip active" : "chip", id: "box-" + b, "aria-current": b === box ? "page" : null }, t("interest.box." + b));
  const filter = h("select", { id: "interest-status", "aria-label": t("interest.filter_status") },
    option("", t("filter.any")), STATUSES.map((s) => option(s, t("interest.status." + s), s === status)));
  filter.addEventListener("change", () => go(`#/interests?box=${box}` + (filter.value ? "&status=" + filter.value : "")));
  const rows = items.map((i) => {
    const other = box === "sent" ? i.owner_park : i.sender_park;
    return h("li", { class: "interest" + (isNew(i) ? " new" : ""), "data-id": i.id, "data-status": i.status },
      h("div", { class: "interest-head" },
        h("a", { class: "interest-title", href: "#/interest/" + encodeURIComponent(i.id) }, i.listing_title || i.listing.id),
        statusBadge(i.status), isNew(i) ? h("span", { class: "badge new-badge" }, t("interest.new")) : ""),
      h("p", { class: "muted small" },
        t(box === "sent" ? "interest.line_sent" : "interest.line_received", { park: parkName(other) }), " · ",
        i.organization && i.organization.name ? i.organization.name + " · " : "",
        h("time", { datetime: i.created_at }, when(i.created_at))));
  });
  view.replaceChildren(h("h1", {}, t("interest.title")),
    h("div", { class: "interest-tools" }, h("nav", { class: "kind-pick", "aria-label": t("interest.boxes") }, tab("received"), tab("sent")),
      h("label", { for: "interest-status" }, t("interest.filter_status")), filter),
    h("p", { class: "muted", id: "interest-count" }, t("interest.count", { n: items.length })),
    items.length ? h("ul", { class: "interests", id: "interests" }, rows) : h("p", { class: "muted", id: "interests-empty" }, t("interest.none." + box)));
}

// ---- one interest ---------------------------------------------------------

let dirty = false; // the answer or withdrawal form has text typed in it

/** interestView draws one interest, with what this park's staff may do. */
export async function interestView(view, r) {
  const id = r.parts[0] || "";
  dirty = false;
  let timer = 0, left = false;
  const onInput = () => { dirty = true; };
  view.addEventListener("input", onInput);
  async function draw() {
    const i = await get("/api/v1/interests/" + encodeURIComponent(id));
    let audit = null;
    if (S.user && S.user.role === "admin") audit = await get(`/api/v1/interests/${encodeURIComponent(id)}/audit`).catch(() => null);
    if (left) return;
    view.replaceChildren(interestPage(i, audit));
    // What no event announces: a message still in the outbox, and the
    // sender's contact arriving here after an acceptance. Look again.
    if (i.delivery || (i.box === "received" && i.status === "accepted" && !i.sender_contact)) {
      timer = setTimeout(() => { if (!dirty && !left) draw().catch(() => {}); }, 2000);
    }
  }
  await draw();
  refreshCount();
  return () => { left = true; clearTimeout(timer); view.removeEventListener("input", onInput); };
}

function row(label, ...value) {
  const v = value.flat().filter((x) => x !== "" && x !== null && x !== undefined);
  if (!v.length) return "";
  return [h("dt", {}, label), h("dd", {}, v)];
}

function contactOf(c, elId) {
  if (!c) return "";
  return h("span", { id: elId, class: "contact" },
    c.name ? h("span", {}, c.name) : "", c.name && (c.email || c.phone) ? " · " : "",
    c.email ? h("a", { href: "mailto:" + c.email }, c.email) : "",
    c.email && c.phone ? " · " : "",
    c.phone ? h("a", { href: "tel:" + c.phone.replace(/[^+0-9]/g, "") }, c.phone) : "");
}

/** deliveryText says why a message is not delivered yet, in the reader's language. */
function deliveryText(d) {
  const known = { "peer rate-limited this park's interests": "interest.delivery.rate_limited", "peer unreachable": "interest.delivery.unreachable" };
  const why = d.last_error ? (known[d.last_error] ? t(known[d.last_error]) : t("error.detail", { message: d.last_error })) : "";
  return [t("interest.delivery.pending", { t: when(d.next_at) }), why].filter(Boolean).join(" ");
}

function interestPage(i, audit) {
  const l = i.listing;
  const listingHref = `#/listing/${encodeURIComponent(l.park)}/${collection(l.kind)}/${encodeURIComponent(l.id)}`;
  const org = i.organization || {};
  const orgText = org.listing_id && org.name
    ? h("a", { href: `#/listing/${encodeURIComponent(i.sender_park)}/organizations/${encodeURIComponent(org.listing_id)}` }, org.name)
    : org.name || "";
  const rows = [
    row(t("interest.from_park"), h("span", { class: "park-name", id: "interest-sender-park" }, parkName(i.sender_park))),
    row(t("interest.to_park"), h("span", { class: "park-name", id: "interest-owner-park" }, parkName(i.owner_park))),
    row(t("interest.organization"), h("span", { id: "interest-org" }, orgText)),
    row(t("interest.offer"), i.offer ? h("span", { id: "interest-offer" }, i.offer) : ""),
    row(t("interest.created"), when(i.created_at)),
    row(t("interest.delivered"), when(i.delivered_at)),
    row(t("interest.opened"), when(i.opened_at)),
    row(t("interest.answered"), when(i.answered_at)),
    row(t("interest.closed"), when(i.closed_at)),
    row(t(i.status === "accepted" ? "interest.exchange_until" : "interest.expires"), ["sent", "delivered", "accepted"].includes(i.status) ? when(i.expires_at) : ""),
    row(t("interest.note"), i.note ? h("span", { id: "interest-note" }, i.note) : ""),
    row(t("interest.withdraw_note"), i.withdraw_note ? h("span", { id: "interest-withdraw-note" }, i.withdraw_note) : ""),
  ];
  const notes = [];
  if (i.status === "refused") notes.push(h("p", { class: "msg bad", id: "interest-refused" }, t("interest.refused_text"), i.reason ? " " + t("error.detail", { message: i.reason }) : ""));
  if (i.delivery) notes.push(h("p", { class: "msg warn", id: "interest-delivery" }, deliveryText(i.delivery)));
  return h("article", { class: "card detail", id: "interest", "data-id": i.id, "data-status": i.status, "data-box": i.box },
    h("p", {}, h("a", { href: "#/interests?box=" + i.box }, "← " + t("interest.back." + i.box))),
    h("div", { class: "badges" }, h("span", { class: "badge kind" }, t("kind." + l.kind)), statusBadge(i.status),
      h("span", { class: "badge" }, t("interest.box1." + i.box))),
    h("h1", { id: "interest-title" }, h("a", { href: listingHref }, i.listing_title || l.id)),
    notes,
    h("h2", {}, t("interest.message")),
    h("p", { class: "summary", id: "interest-message" }, i.message),
    h("dl", { class: "facts" }, rows),
    contacts(i),
    actions(i),
    audit ? auditTrail(audit.audit || []) : "");
}

/** contacts: both sides' contacts while accepted; why there are none otherwise. */
function contacts(i) {
  const sent = i.box === "sent";
  const mine = sent ? i.sender_contact : i.owner_contact;
  const theirs = sent ? i.owner_contact : i.sender_contact;
  const body = [];
  if (i.status === "accepted") {
    body.push(h("h3", {}, t(sent ? "interest.owner_contact" : "interest.sender_contact")),
      theirs ? contactOf(theirs, "their-contact")
        : h("p", { class: "muted", id: "their-contact-none" }, t(sent && i.listing.kind === "talent" ? "interest.no_consent" : "interest.contact_coming")));
    body.push(h("h3", {}, t("interest.own_contact")),
      mine ? contactOf(mine, "own-contact") : h("p", { class: "muted", id: "own-contact-none" }, t(!sent && i.listing.kind === "talent" ? "interest.no_consent_own" : "interest.no_contact")));
  } else if (i.status === "withdrawn" || i.status === "expired") {
    body.push(h("p", { class: "muted", id: "contacts-ended" }, t("interest.exchange_ended")));
  } else if (i.status === "sent" || i.status === "delivered") {
    body.push(h("p", { class: "muted", id: "contacts-pending" }, t(sent ? "interest.contacts_after_sent" : "interest.contacts_after_received")));
    if (sent && mine) body.push(h("p", { class: "small" }, t("interest.own_contact_kept") + " ", contactOf(mine, "own-contact")));
  } else {
    return "";
  }
  return h("section", { class: "contacts", id: "contacts", "aria-label": t("interest.contacts") }, h("h2", {}, t("interest.contacts")), body);
}

/** actions: accept/decline (owner park, delivered), withdraw (sender park). */
function actions(i) {
  if (!canEdit()) return "";
  const msg = h("p", { class: "msg bad", role: "alert", hidden: true, id: "interest-error" });
  const fail = (e) => { msg.hidden = false; msg.textContent = e.status === 409 ? t("interest.conflict") + " " + t("error.detail", { message: e.message }) : errorText(e); };
  const done = (text) => { dirty = false; go("#/interest/" + encodeURIComponent(i.id), text); };
  if (i.box === "received" && i.status === "delivered") {
    const talent = i.listing.kind === "talent";
    const ids = { note: uid("an"), name: uid("acn"), email: uid("ace"), phone: uid("acp") };
    const note = h("textarea", { id: ids.note, name: "note", rows: 3, maxlength: 2000 });
    const contact = talent
      ? h("p", { class: "muted", id: "accept-talent" }, t("interest.accept_talent"))
      : h("fieldset", { class: "section", id: "accept-contact" }, h("legend", {}, t("interest.answer_contact")),
        h("p", { class: "muted" }, t("interest.answer_contact_help")),
        h("div", { class: "field" }, h("label", { for: ids.name }, t("interest.contact_name")), h("input", { id: ids.name, name: "contact.name", maxlength: 200, value: (S.user && S.user.display_name) || "" })),
        h("div", { class: "field" }, h("label", { for: ids.email }, t("interest.contact_email")), h("input", { id: ids.email, name: "contact.email", type: "email", maxlength: 254 })),
        h("div", { class: "field" }, h("label", { for: ids.phone }, t("interest.contact_phone")), h("input", { id: ids.phone, name: "contact.phone", type: "tel", maxlength: 40 })));
    const form = h("form", { id: "answer-form", class: "answer", novalidate: true },
      h("h2", {}, t("interest.answer")),
      h("div", { class: "field" }, h("label", { for: ids.note }, t("interest.answer_note")), note),
      contact, msg,
      h("div", { class: "actions" },
        h("button", { type: "button", id: "accept", onclick: () => answer(true) }, t("interest.accept")),
        h("button", { type: "button", id: "decline", class: "danger", onclick: () => answer(false) }, t("interest.decline"))));
    async function answer(accept) {
      msg.hidden = true;
      const body = { note: note.value };
      if (accept && !talent) {
        const c = {};
        for (const k of ["name", "email", "phone"]) { const v = form.elements["contact." + k].value.trim(); if (v) c[k] = v; }
        body.contact = c;
      }
      form.querySelectorAll("button").forEach((b) => { b.disabled = true; });
      try {
        await call("POST", `/api/v1/interests/${encodeURIComponent(i.id)}/${accept ? "accept" : "decline"}`, { body });
        done(t(accept ? "interest.accepted_flash" : "interest.declined_flash"));
      } catch (e) {
        if (e.code === "invalid" && /needs an email or a phone/.test(e.message)) { msg.hidden = false; msg.textContent = t("interest.contact_needed"); } else fail(e);
      } finally {
        form.querySelectorAll("button").forEach((b) => { b.disabled = false; });
      }
    }
    return form;
  }
  if (i.box === "sent" && ["sent", "delivered", "accepted"].includes(i.status)) {
    const id = uid("wn");
    const note = h("textarea", { id, name: "withdraw_note", rows: 2, maxlength: 2000 });
    const confirm = h("div", { class: "confirm", hidden: true },
      h("div", { class: "field" }, h("label", { for: id }, t("interest.withdraw_note_label")), note),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "danger", id: "withdraw-interest-confirm", onclick: withdraw }, t("interest.withdraw_confirm")),
        h("button", { type: "button", class: "secondary", onclick: () => { confirm.hidden = true; start.hidden = false; start.focus(); } }, t("detail.withdraw_cancel"))));
    const start = h("button", { type: "button", id: "withdraw-interest", class: "secondary", onclick: () => { start.hidden = true; confirm.hidden = false; note.focus(); } }, t("interest.withdraw"));
    async function withdraw() {
      try {
        await call("POST", `/api/v1/interests/${encodeURIComponent(i.id)}/withdraw`, { body: { note: note.value } });
        done(t("interest.withdrawn_flash"));
      } catch (e) { fail(e); }
    }
    return h("div", { class: "answer" }, h("p", { class: "muted" }, t(i.status === "accepted" ? "interest.withdraw_help_accepted" : "interest.withdraw_help")), start, confirm, msg);
  }
  return "";
}

/** auditTrail: every step at this park, for admins. */
function auditTrail(entries) {
  const actor = (a) => (a.startsWith("park:") ? parkName(a.slice(5)) : a || "—");
  const action = (a) => (has("interest.audit." + a) ? t("interest.audit." + a) : a);
  return h("section", { class: "audit", id: "audit" }, h("h2", {}, t("interest.audit")),
    h("table", { class: "members" },
      h("thead", {}, h("tr", {}, ["interest.audit_at", "interest.audit_action", "interest.audit_actor", "interest.audit_fields"].map((k) => h("th", { scope: "col" }, t(k))))),
      h("tbody", {}, entries.map((e) => h("tr", { "data-action": e.action },
        h("td", { "data-label": t("interest.audit_at") }, when(e.at)),
        h("td", { "data-label": t("interest.audit_action") }, action(e.action)),
        h("td", { "data-label": t("interest.audit_actor") }, actor(e.actor)),
        h("td", { "data-label": t("interest.audit_fields") }, list(e.fields || []) || "—"))))));
}

// ---- live -----------------------------------------------------------------

/** refreshCount shows how many received interests nobody has opened yet. */
export async function refreshCount() {
  const el = document.getElementById("interests-new");
  if (!el) return;
  try {
    const ans = await get("/api/v1/interests?box=received&status=delivered&limit=200");
    const n = (ans.interests || []).filter(isNew).length;
    el.hidden = n === 0;
    el.textContent = String(n);
    el.setAttribute("aria-label", t("interest.new_count", { n }));
  } catch { /* the count is a hint; the box itself says more */ }
}

let stream = null;

/**
 * watch follows the park's interest events while signed in: each one
 * refreshes the count and calls changed (the portal redraws an interest
 * view unless a form there has text typed in it). It resumes after a
 * dropped connection from the last event's id.
 */
export function watch(changed) {
  unwatch();
  const ctl = new AbortController();
  let last = "";
  let attempt = 0;
  stream = ctl;
  refreshCount();
  (async function follow() {
    while (!ctl.signal.aborted) {
      try {
        const headers = { Accept: "text/event-stream" };
        if (last) headers["Last-Event-ID"] = last;
        const res = await fetch("/api/v1/interests/stream", { headers, credentials: "same-origin", cache: "no-store", signal: ctl.signal });
        if (res.status === 401 || res.status === 403) return;
        if (res.ok) {
          attempt = 0;
          await readEvents(res.body, (id, isEvent) => {
            if (id) last = id;
            if (isEvent) { refreshCount(); changed(); }
          });
        }
      } catch (e) {
        if (e.name === "AbortError") return;
      }
      await new Promise((ok) => setTimeout(ok, Math.min(1000 * 2 ** attempt++, 15000)));
    }
  })();
}

/** unwatch stops following. */
export function unwatch() {
  if (stream) stream.abort();
  stream = null;
}

/** shouldRedraw: an interest view is shown and nothing is being typed there. */
export const shouldRedraw = (routeName) => routeName === "interests" || (routeName === "interest" && !dirty);

/** readEvents calls on(id, isEvent) for each event of the interest stream. */
async function readEvents(body, on) {
  await readSSE(body, (id, type, data) => on(id, data !== null && type === "message"));
}
