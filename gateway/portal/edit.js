// Creating and editing the park's own listings (editors and admins). A
// change is sent with If-Match: the version the form was opened at, so a
// change someone made meanwhile is a conflict shown as such, never
// overwritten. The API's errors name a field; the message goes there.
import { h, uid, option, go } from "./dom.js";
import { call, collection, kindOf } from "./api.js";
import { t, vocab, errorText, colon } from "./i18n.js";
import { S, VOCAB, parkName, canEdit } from "./state.js";

export async function editView(view, r) {
  if (!canEdit()) {
    view.replaceChildren(h("p", { class: "msg bad", role: "alert" }, t("edit.not_editor")));
    return;
  }
  let kind, l = null;
  if (r.name === "new") {
    kind = kindOf(r.parts[0]) || "project";
  } else {
    kind = kindOf(r.parts[0]);
    const res = await call("GET", `/api/v1/${r.parts[0]}/${encodeURIComponent(r.parts[1] || "")}`);
    l = res.body;
  }
  view.replaceChildren(form(kind, l));
  const first = view.querySelector("input, select, textarea");
  if (first && r.name === "new") first.focus();
}

// Each field: where the API's errors point (path), how it is drawn and read.
function fields(kind) {
  const common = [
    { path: "title", type: "text", required: true, max: 200 },
    { path: "summary", type: "textarea", max: 4000 },
    { path: "sectors", type: "checks", vocab: "sector", values: VOCAB.sector, required: true },
    { path: "tags", type: "list" },
    { path: "country", type: "text", required: true, max: 2, pattern: "[A-Za-z]{2}" },
    { path: "city", type: "text", max: 100 },
    { path: "seeking", type: "checks", vocab: "need", values: VOCAB.need },
    { path: "offering", type: "checks", vocab: "need", values: VOCAB.need },
  ];
  const attrs = {
    organization: [
      { path: "attrs.org_type", type: "select", vocab: "org_type", values: VOCAB.org_type, required: true },
      { path: "attrs.website", type: "url", max: 300 },
      { path: "attrs.founded", type: "number", min: 1800, max: 2100 },
      { path: "attrs.size", type: "select", vocab: "size", values: VOCAB.size },
    ],
    project: [
      { path: "attrs.stage", type: "select", vocab: "stage", values: VOCAB.stage, required: true },
      { path: "attrs.trl", type: "number", min: 1, max: 9 },
      { path: "attrs.funding_ask.amount", type: "number", min: 0 },
      { path: "attrs.funding_ask.currency", type: "select", vocab: "currency", values: VOCAB.currency, code: true },
      { path: "attrs.landing_preference", type: "checks", parks: true },
    ],
    talent: [
      { path: "attrs.expertise", type: "list" },
      { path: "attrs.languages", type: "list" },
      { path: "attrs.availability", type: "checks", vocab: "availability", values: VOCAB.availability },
      { path: "attrs.affiliation", type: "text", max: 100 },
      { path: "attrs.years_experience", type: "number", min: 0, max: 80 },
      { path: "attrs.contact.email", type: "email", max: 200 },
      { path: "attrs.contact.phone", type: "tel", max: 50 },
      { path: "attrs.consent.share_contact", type: "bool" },
    ],
  }[kind];
  const visibility = [
    { path: "visibility", type: "radios", vocab: "visibility", values: ["private", "club", "peers"] },
    { path: "share_with", type: "checks", parks: true, peersOnly: true },
  ];
  return { common, attrs, visibility };
}

const getPath = (o, path) => path.split(".").reduce((x, k) => (x == null ? undefined : x[k]), o);
function setPath(o, path, v) {
  const ks = path.split(".");
  let x = o;
  for (const k of ks.slice(0, -1)) x = x[k] && typeof x[k] === "object" ? x[k] : (x[k] = {});
  const last = ks[ks.length - 1];
  if (v === undefined) delete x[last]; else x[last] = v;
}

function control(f, value) {
  const id = uid("f");
  const errId = id + "-err";
  const label = t("field." + f.path);
  const err = h("p", { class: "field-error", id: errId, hidden: true });
  const common = { id, name: f.path, "aria-describedby": errId, "data-path": f.path };
  let input;
  switch (f.type) {
    case "textarea":
      input = h("textarea", { ...common, rows: 5, maxlength: f.max }, value || "");
      break;
    case "select":
      input = h("select", common, option("", "—"), f.values.map((v) => option(v, f.code ? `${v} · ${vocab(f.vocab, v)}` : vocab(f.vocab, v), value === v)));
      break;
    case "checks": case "radios": {
      const values = f.parks ? [...S.parks.keys()].filter((p) => !f.peersOnly || p !== S.park.id) : f.values;
      const chosen = Array.isArray(value) ? value : value ? [value] : [];
      return h("fieldset", { class: "field group", "data-field": f.path, "aria-describedby": errId },
        h("legend", {}, label),
        h("div", { class: "choices" }, values.map((v) => {
          const cid = uid("c");
          return h("span", { class: "choice" },
            h("input", { type: f.type === "radios" ? "radio" : "checkbox", id: cid, name: f.path, value: v, checked: chosen.includes(v) }),
            h("label", { for: cid }, f.parks ? parkName(v) : vocab(f.vocab, v)));
        })),
        err);
    }
    case "bool":
      return h("div", { class: "field check", "data-field": f.path },
        h("input", { ...common, type: "checkbox", checked: !!value }), h("label", { for: id }, label), err);
    case "list":
      input = h("input", { ...common, type: "text", value: (value || []).join(", ") });
      return h("div", { class: "field", "data-field": f.path }, h("label", { for: id }, label),
        h("small", { class: "muted" }, t("field.list_help")), input, err);
    default:
      input = h("input", { ...common, type: f.type, value: value ?? "", maxlength: f.max && f.type !== "number" ? f.max : null,
        min: f.type === "number" ? f.min : null, max: f.type === "number" ? f.max : null, required: !!f.required,
        autocapitalize: f.path === "country" ? "characters" : null });
  }
  return h("div", { class: "field", "data-field": f.path }, h("label", { for: id }, label, f.required ? h("span", { "aria-hidden": "true" }, " *") : ""), input, err);
}

function read(form, f) {
  const els = form.querySelectorAll(`[name="${CSS.escape(f.path)}"]`);
  switch (f.type) {
    case "checks": return [...els].filter((e) => e.checked).map((e) => e.value);
    case "radios": return ([...els].find((e) => e.checked) || {}).value || "";
    case "bool": return els[0].checked;
    case "list": return els[0].value.split(/[,，、]/).map((s) => s.trim()).filter(Boolean);
    case "number": return els[0].value === "" ? undefined : Number(els[0].value);
    default: return els[0].value.trim();
  }
}

function form(kind, l) {
  const editing = !!l;
  const start = l || { kind, visibility: "club", country: (S.park && S.park.country) || "", sectors: [] };
  const fs = fields(kind);
  const all = [...fs.common, ...fs.attrs, ...fs.visibility];
  const general = h("div", { id: "form-error", role: "alert" });
  const submit = h("button", { type: "submit", id: "save" }, t("edit.save"));
  const kindPick = editing ? "" : h("p", { class: "kind-pick" }, t("edit.choose_kind") + colon(),
    VOCAB.kind.map((k) => h("a", { href: "#/new/" + collection(k), class: k === kind ? "chip active" : "chip", "aria-current": k === kind ? "page" : null }, t("kind." + k))));
  const el = h("form", { id: "edit-form", class: "card edit", novalidate: true, "data-kind": kind },
    h("h1", {}, editing ? t("edit.edit_title", { title: l.title }) : t("edit.new_title", { kind: t("kind." + kind) })),
    kindPick,
    h("fieldset", { class: "section" }, h("legend", {}, t("edit.section_common")), fs.common.map((f) => control(f, getPath(start, f.path)))),
    h("fieldset", { class: "section" }, h("legend", {}, t("edit.section_attrs", { kind: t("kind." + kind) })), fs.attrs.map((f) => control(f, getPath(start, f.path)))),
    h("fieldset", { class: "section" }, h("legend", {}, t("edit.section_visibility")), fs.visibility.map((f) => control(f, getPath(start, f.path)))),
    general,
    h("div", { class: "actions" }, submit,
      h("a", { class: "button secondary", href: editing ? `#/listing/${encodeURIComponent(l.park)}/${collection(kind)}/${encodeURIComponent(l.id)}` : "#/search" }, t("edit.cancel"))));

  el.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(el, general);
    const body = JSON.parse(JSON.stringify(start));
    for (const f of all) {
      let v = read(el, f);
      if (f.path === "country") v = v.toUpperCase();
      if (v === "" || (Array.isArray(v) && v.length === 0) || v === false) v = undefined;
      setPath(body, f.path, v);
    }
    if (body.attrs && body.attrs.funding_ask && body.attrs.funding_ask.amount === undefined && !body.attrs.funding_ask.currency) delete body.attrs.funding_ask;
    if (body.attrs && body.attrs.contact && !body.attrs.contact.email && !body.attrs.contact.phone) delete body.attrs.contact;
    if (body.visibility !== "peers") delete body.share_with;
    body.kind = kind;
    if (!body.sectors) body.sectors = [];
    body.attrs ||= {};
    submit.disabled = true;
    submit.textContent = t("edit.saving");
    try {
      const coll = collection(kind);
      const res = editing
        ? await call("PUT", `/api/v1/${coll}/${encodeURIComponent(l.id)}`, { body, headers: { "If-Match": `"${l.version}"` } })
        : await call("POST", `/api/v1/${coll}`, { body });
      const saved = res.body;
      go(`#/listing/${encodeURIComponent(saved.park)}/${coll}/${encodeURIComponent(saved.id)}`, t(editing ? "edit.saved" : "edit.created"));
    } catch (err) {
      if (err.status === 412) {
        await conflict(general, kind, l);
      } else {
        showError(el, general, err);
      }
    } finally {
      submit.disabled = false;
      submit.textContent = t("edit.save");
    }
  });
  return el;
}

function clearErrors(form, general) {
  general.replaceChildren();
  form.querySelectorAll(".field-error").forEach((p) => { p.hidden = true; p.textContent = ""; });
  form.querySelectorAll("[aria-invalid]").forEach((x) => x.removeAttribute("aria-invalid"));
  form.querySelectorAll(".invalid").forEach((x) => x.classList.remove("invalid"));
}

/** conflict says the listing changed meanwhile and offers the latest version. */
async function conflict(general, kind, l) {
  let version = "?";
  try {
    const cur = await call("GET", `/api/v1/${collection(kind)}/${encodeURIComponent(l.id)}`);
    version = cur.body.version;
  } catch { /* the message stands without the number */ }
  general.replaceChildren(h("div", { class: "msg bad conflict", id: "conflict" },
    h("p", {}, t("edit.conflict", { version })),
    h("button", { type: "button", id: "reload-latest", onclick: () => go(location.hash) }, t("edit.reload"))));
  general.querySelector("button").focus();
}

/** friendly turns the API's English detail into the language's text when it is a common case. */
function friendly(message) {
  if (/is required/.test(message)) return t("error.required");
  if (/needs at least one/.test(message)) return t("error.choose_one");
  return message;
}

function showError(form, general, err) {
  const path = (err.field || "").replace(/\[\d+\]/g, "");
  let box = null;
  for (let p = path; p && !box; p = p.includes(".") ? p.slice(0, p.lastIndexOf(".")) : "") {
    box = form.querySelector(`[data-field="${CSS.escape(p)}"]`);
  }
  if (err.code === "invalid" && box) {
    const p = box.querySelector(".field-error");
    p.hidden = false;
    p.textContent = friendly(err.message);
    box.classList.add("invalid");
    const input = box.querySelector("input, select, textarea");
    if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
    general.replaceChildren(h("p", { class: "msg bad" }, t("edit.fix") + " " + t("error.at_field", { field: t("field." + box.dataset.field), message: friendly(err.message) })));
    return;
  }
  general.replaceChildren(h("p", { class: "msg bad" }, err.field ? t("error.at_field", { field: err.field, message: errorText(err) }) : errorText(err)));
}
