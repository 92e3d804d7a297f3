// The park API as the portal calls it: the session cookie (HttpOnly, set by
// the gateway) authenticates; every unsafe request carries the session's
// CSRF token in X-CSRF-Token. Errors become APIError with the API's code
// and the field it names.

let csrf = "";
let onSignedOut = () => {};

/** APIError is a refused or failed call. */
export class APIError extends Error {
  constructor(status, code, message, field, retryAfter) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.field = field || "";
    this.retryAfter = retryAfter || "";
  }
}

const codeOfStatus = { 400: "invalid", 401: "unauthenticated", 403: "forbidden", 404: "not_found", 409: "conflict",
  412: "precondition_failed", 429: "too_many_requests", 503: "unavailable", 504: "timeout", 507: "insufficient_storage" };

/** whenSignedOut sets what happens when the API says the session is gone. */
export function whenSignedOut(fn) { onSignedOut = fn; }

/** setCSRF keeps the session's CSRF token. */
export function setCSRF(tok) { csrf = tok || ""; }

/**
 * call sends one request. opts: {body, headers, signal, quiet401}. It
 * returns {status, headers, body}; it throws APIError when refused.
 */
export async function call(method, path, opts = {}, retried = false) {
  const headers = { Accept: "application/json", ...(opts.headers || {}) };
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD" && csrf) headers["X-CSRF-Token"] = csrf;
  let res;
  try {
    res = await fetch(path, {
      method, headers, credentials: "same-origin", cache: "no-store", signal: opts.signal,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new APIError(0, "network", String(e.message || e));
  }
  if (res.status === 204) return { status: 204, headers: res.headers, body: null };
  const body = await res.json().catch(() => null);
  if (res.ok) return { status: res.status, headers: res.headers, body };
  const e = (body && body.error) || {};
  const err = new APIError(res.status, e.code || codeOfStatus[res.status] || "internal", e.message || res.statusText, e.field,
    res.headers.get("Retry-After"));
  // A CSRF token that no longer matches (the session was renewed in
  // another tab): fetch the session's current one and try once more.
  if (res.status === 403 && err.code === "csrf" && !retried) {
    const s = await session().catch(() => null);
    if (s) return call(method, path, opts, true);
  }
  if (res.status === 401 && !opts.quiet401) onSignedOut("expired");
  throw err;
}

export const get = (path, opts) => call("GET", path, opts).then((r) => r.body);

/** session returns the signed-in session, or null. */
export async function session() {
  try {
    const r = await call("GET", "/api/v1/session", { quiet401: true });
    setCSRF(r.body.csrf_token);
    return r.body;
  } catch (e) {
    if (e.status === 401) return null;
    throw e;
  }
}

/** signIn signs in with a password; the gateway sets the session cookie. */
export async function signIn(username, password) {
  const r = await call("POST", "/api/v1/session", { body: { username, password }, quiet401: true });
  setCSRF(r.body.csrf_token);
  return r.body;
}

/** signOut ends the session. */
export async function signOut() {
  try {
    await call("DELETE", "/api/v1/session", { quiet401: true });
  } finally {
    setCSRF("");
  }
}

/** collection is a kind's path segment. */
export const collection = (kind) => ({ organization: "organizations", project: "projects", talent: "talent" })[kind] || kind;

/** kindOf is a collection's kind. */
export const kindOf = (coll) => ({ organizations: "organization", projects: "project", talent: "talent" })[coll] || "";
