// The sign-in page: a park account's password, or the park's own OpenID
// Connect provider when the gateway has one.
import { h, uid, flash } from "./dom.js";
import * as api from "./api.js";
import { t, errorText } from "./i18n.js";

export function signInView(done) {
  const user = uid("user"), pass = uid("pass");
  const err = h("p", { id: "signin-error", class: "msg bad", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", id: "signin-submit" }, t("signin.submit"));
  const form = h("form", { id: "signin", class: "card narrow", novalidate: true },
    h("h1", {}, t("signin.title")),
    h("p", { class: "muted" }, t("signin.intro")),
    h("div", { class: "field" }, h("label", { for: user }, t("signin.username")),
      h("input", { id: user, name: "username", autocomplete: "username", required: true, maxlength: 100 })),
    h("div", { class: "field" }, h("label", { for: pass }, t("signin.password")),
      h("input", { id: pass, name: "password", type: "password", autocomplete: "current-password", required: true, maxlength: 1000 })),
    err, submit);
  const oidc = h("div", { id: "oidc", hidden: true });
  form.append(oidc);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const u = form.elements.username.value.trim(), p = form.elements.password.value;
    if (!u || !p) {
      err.hidden = false;
      err.textContent = t("error.required");
      (u ? form.elements.password : form.elements.username).focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = t("signin.busy");
    try {
      const sess = await api.signIn(u, p);
      err.hidden = true;
      err.textContent = "";
      flash("");
      await done(sess);
    } catch (e2) {
      err.hidden = false;
      if (e2.status === 401) err.textContent = t("signin.failed");
      else if (e2.status === 429) err.textContent = t("signin.throttled", { s: e2.retryAfter || "60" });
      else if (e2.status === 403 && e2.code !== "csrf") err.textContent = t("signin.disabled");
      else err.textContent = errorText(e2);
      form.elements.password.value = "";
      form.elements.password.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = t("signin.submit");
    }
  });
  // Sign-in through the park's identity provider, when it has one.
  api.get("/api/v1/auth/oidc", { quiet401: true }).then((o) => {
    if (!o || !o.enabled) return;
    oidc.hidden = false;
    oidc.replaceChildren(h("p", { class: "or" }, t("signin.or")),
      h("a", { class: "button", id: "oidc-login", href: "/auth/oidc/login?return_to=%2F" },
        t("signin.oidc", { name: o.name || "OpenID Connect" })));
  }).catch(() => { /* no OIDC sign-in here */ });
  return form;
}
