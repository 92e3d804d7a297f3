// The message catalogue (i18n/messages.json, one file for both
// languages) and the current language. Before sign-in the choice is kept in
// localStorage; signed in, it is the user's own (PUT /api/v1/session/lang).

let catalogue = {};
let lang = localStorage.getItem("parkmesh-lang") === "en" ? "en" : "zh";

/** load fetches the catalogue once. */
export async function load() {
  const res = await fetch("/portal/i18n/messages.json", { cache: "no-cache" });
  catalogue = await res.json();
}

export const getLang = () => lang;

/** setLang changes the language (and remembers it in this browser). */
export function setLang(l) {
  lang = l === "en" ? "en" : "zh";
  localStorage.setItem("parkmesh-lang", lang);
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
}

/** t translates key, filling {name} placeholders from vars. */
export function t(key, vars) {
  const e = catalogue[key];
  let s = e ? (e[lang] || e.en || key) : key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (vars[k] !== undefined ? String(vars[k]) : m));
  return s;
}

/** has reports whether the catalogue holds key. */
export const has = (key) => Object.prototype.hasOwnProperty.call(catalogue, key);

/** vocab translates a controlled vocabulary value ("sector", "new-materials"). */
export const vocab = (group, value) => (has(`${group}.${value}`) ? t(`${group}.${value}`) : value);

const locale = () => (lang === "zh" ? "zh-CN" : "en-GB");

/** when formats a time stamp for people. */
export function when(ts) {
  if (!ts) return "";
  const d = new Date(ts);
  if (isNaN(d)) return "";
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "short" }).format(d);
}

/** country names an ISO 3166-1 code in the current language. */
export function country(code) {
  if (!code) return "";
  try {
    return new Intl.DisplayNames([locale()], { type: "region" }).of(code) || code;
  } catch {
    return code;
  }
}

/** number formats an integer. */
export const number = (n) => new Intl.NumberFormat(locale()).format(n);

/** applyStatic translates the page's static texts (data-i18n…). */
export function applyStatic(root = document) {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.title = t("app.title");
  root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  root.querySelectorAll("[data-i18n-label]").forEach((el) => { el.setAttribute("aria-label", t(el.dataset.i18nLabel)); });
  root.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.setAttribute("placeholder", t(el.dataset.i18nPlaceholder)); });
}

/** errorText is an API error as people read it: the code's text in their
 * language, then the API's own detail (English) when it says more. */
export function errorText(e) {
  const code = (e && e.code) || "internal";
  const base = has("error." + code) ? t("error." + code) : t("error.internal");
  return e && e.message && e.message !== code ? `${base} — ${e.message}` : base;
}

/** list joins values as the language does. */
export const list = (xs) => (xs || []).join(t("punct.list"));

/** colon is the language's colon. */
export const colon = () => t("punct.colon");
