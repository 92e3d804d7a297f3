// ParkMesh portal: park staff search their park or the whole club and
// follow new listings live. The token stays in this browser's
// sessionStorage and is sent as a bearer header, never in a URL.
"use strict";
const $ = (id) => document.getElementById(id);
const sectors = ["new-materials", "biomedicine", "medical-devices", "aerospace", "ai", "semiconductors", "new-energy",
  "advanced-manufacturing", "information-technology", "agritech", "fintech", "environmental", "automotive", "other"];
let cursor = "";

function token() { return sessionStorage.getItem("parkmesh-token") || ""; }

function text(tag, value, cls) {
  const el = document.createElement(tag);
  el.textContent = value;
  if (cls) el.className = cls;
  return el;
}

async function api(path) {
  const res = await fetch(path, { headers: { Authorization: "Bearer " + token() } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((body.error && body.error.message) || res.statusText);
  return body;
}

function row(l) {
  const tr = document.createElement("tr");
  tr.append(text("td", l.park), text("td", l.kind));
  const title = text("td", l.title);
  if (l.summary) title.title = l.summary;
  tr.append(title);
  const tags = (xs) => { const td = document.createElement("td"); (xs || []).forEach((x) => td.append(text("span", x, "tag"))); return td; };
  tr.append(tags(l.sectors), tags(l.seeking), text("td", l.country));
  return tr;
}

async function search(next) {
  const p = new URLSearchParams({ scope: $("scope").value, limit: "20" });
  if ($("q").value.trim()) p.set("q", $("q").value.trim());
  if ($("kinds").value) p.set("kinds", $("kinds").value);
  if ($("sectors").value) p.set("sectors", $("sectors").value);
  if (next && cursor) p.set("cursor", cursor);
  const status = $("status");
  status.textContent = "…";
  try {
    const r = await api("/api/v1/search?" + p);
    const body = $("results").tBodies[0];
    if (!next) body.replaceChildren();
    r.results.forEach((l) => body.append(row(l)));
    cursor = r.next_cursor || "";
    $("more").hidden = !cursor;
    // Index searches report each park's freshness (live, stale as of a
    // time, syncing); local and live searches how each park answered.
    const parks = (r.parks.details || []).map((d) =>
      `${d.park}: ${d.status}${d.status === "stale" && d.as_of ? " since " + new Date(d.as_of).toLocaleString() : ""} (${d.hits})`).join(" · ");
    const good = r.parks.live + r.parks.ok;
    status.replaceChildren(text("span", `${good}/${r.parks.total} parks current — ${parks}`, r.partial ? "bad" : ""));
  } catch (e) {
    status.replaceChildren(text("span", e.message, "bad"));
  }
}

// follow reads the park-side SSE stream with fetch, so the token goes in a
// header (EventSource cannot send one).
async function follow() {
  const p = new URLSearchParams();
  if ($("sectors").value) p.set("sectors", $("sectors").value);
  if ($("kinds").value) p.set("kinds", $("kinds").value);
  const res = await fetch("/api/v1/stream?" + p, { headers: { Authorization: "Bearer " + token() } });
  if (!res.ok) { $("events").prepend(text("li", "stream: " + res.status)); return; }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i); buf = buf.slice(i + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (!data) continue;
      try {
        const ev = JSON.parse(data);
        const kind = (ev.type || "").split(".").pop();
        const l = ev.data || {};
        $("events").prepend(text("li", `${new Date(ev.time).toLocaleTimeString()} ${ev.source.replace("/parks/", "")} ${kind}: ${l.title || ev.subject}`));
      } catch (e) { /* not an event */ }
    }
  }
}

async function whoami() {
  if (!token()) { $("who").textContent = ""; return; }
  try {
    const peers = await api("/api/v1/peers");
    $("park").textContent = "· " + peers.park;
    $("who").textContent = `${peers.peers.length} peers`;
  } catch (e) { $("who").textContent = e.message; }
}

sectors.forEach((s) => { const o = text("option", s); o.value = s; $("sectors").append(o); });
$("login").addEventListener("submit", (e) => { e.preventDefault(); sessionStorage.setItem("parkmesh-token", $("token").value.trim()); $("token").value = ""; whoami(); });
$("search").addEventListener("submit", (e) => { e.preventDefault(); search(false); });
$("more").addEventListener("click", () => search(true));
$("live").addEventListener("click", () => { $("live").disabled = true; follow().finally(() => { $("live").disabled = false; }); });
whoami();
