// ParkMesh portal: the park staff's page. Plain ES modules, no build step,
// no third-party code (docs/decisions.md says why). Hash routes:
//   #/search?…            club or local search with facets
//   #/listing/P/KIND/ID   one listing of any park
//   #/new/KIND  #/edit/KIND/ID   the park's own listings (editors)
//   #/live                the club's changes as they happen
//   #/members             the club's parks and their health
//   #/interests  #/interest/ID  #/express/P/KIND/ID   expressions of interest
import { h, $, flash, takeFlash } from "./dom.js";
import * as api from "./api.js";
import { load, t, getLang, setLang, applyStatic, errorText } from "./i18n.js";
import { S, loadParks, parkName, canEdit } from "./state.js";
import { signInView } from "./signin.js";
import { searchView } from "./search.js";
import { listingView } from "./listing.js";
import { editView } from "./edit.js";
import { liveView } from "./live.js";
import { membersView } from "./members.js";
import { expressView, interestsView, interestView, watch, unwatch, shouldRedraw } from "./interests.js";

let leave = null; // what the current view does when it is left (stop a stream)

function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, query] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { name: parts[0] || "search", parts: parts.slice(1), params: new URLSearchParams(query || "") };
}

/** render draws the view the hash names (the sign-in page when signed out). */
async function render() {
  if (leave) { leave(); leave = null; }
  applyStatic();
  renderHeader();
  const view = $("view");
  if (!S.user) {
    view.replaceChildren(signInView(signedIn));
    return;
  }
  const r = route();
  const views = { search: searchView, listing: listingView, new: editView, edit: editView, live: liveView, members: membersView,
    interests: interestsView, interest: interestView, express: expressView };
  const fn = views[r.name] || searchView;
  document.querySelectorAll("#nav a").forEach((a) => {
    if (a.dataset.route === r.name) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  });
  view.replaceChildren(h("p", { class: "muted" }, t("app.loading")));
  try {
    leave = (await fn(view, r)) || null;
  } catch (e) {
    // A view whose call found the session gone has been replaced by the
    // sign-in page already: keep that, not the view's error.
    if (e.name !== "AbortError" && S.user) view.replaceChildren(h("p", { class: "msg bad", role: "alert" }, errorText(e)));
  }
}

function renderHeader() {
  $("park").textContent = S.park ? parkName(S.park.id) : "";
  $("nav").hidden = !S.user;
  $("nav-new").hidden = !canEdit();
  const who = $("who");
  who.replaceChildren();
  if (S.user) {
    who.append(h("span", { id: "signed-in-as" }, t("who.signed_in", { name: S.user.display_name || S.user.username, role: t("role." + S.user.role) })),
      h("button", { id: "logout", type: "button", onclick: logout }, t("who.logout")));
  }
  const sw = $("lang");
  sw.textContent = t("lang.switch");
  sw.setAttribute("aria-label", t("lang.switch_label"));
  sw.setAttribute("lang", getLang() === "zh" ? "en" : "zh");
}

async function signedIn(sess) {
  S.user = sess.user;
  if (sess.user.lang === "zh" || sess.user.lang === "en") setLang(sess.user.lang);
  await loadParks();
  watchInterests();
  flash("");
  if (route().name === "signin") location.hash = "#/search";
  await render();
}

async function logout() {
  try { await api.signOut(); } catch { /* the session is gone either way */ }
  S.user = null;
  unwatch();
  sessionStorage.removeItem("parkmesh-live");
  await render();
  flash(t("signin.signed_out"));
}

async function switchLang() {
  const next = getLang() === "zh" ? "en" : "zh";
  setLang(next);
  if (S.user) {
    S.user.lang = next;
    api.call("PUT", "/api/v1/session/lang", { body: { lang: next } }).catch((e) => flash(errorText(e), "bad"));
  }
  await render();
}

/** watchInterests follows the park's interest events: the navigation's
 * count stays current and an interest view is redrawn when one changes. */
function watchInterests() {
  watch(() => { if (S.user && shouldRedraw(route().name)) render(); });
}

async function start() {
  await load();
  setLang(getLang());
  $("lang").addEventListener("click", switchLang);
  api.whenSignedOut(async () => {
    if (!S.user) return;
    S.user = null;
    unwatch();
    await render();
    flash(t("signin.expired"), "bad");
  });
  window.addEventListener("hashchange", () => { flash(...takeFlash()); render(); });
  try {
    const sess = await api.session();
    if (sess) {
      S.user = sess.user;
      if (sess.user.lang === "zh" || sess.user.lang === "en") setLang(sess.user.lang);
      await loadParks();
      watchInterests();
    }
  } catch (e) {
    flash(errorText(e), "bad");
  }
  await render();
}

start();
