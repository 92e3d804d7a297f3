// The club's members: this park and every peer, by name, with country,
// health, feed lag and since when they are members.
import { h } from "./dom.js";
import { t, when, country, getLang } from "./i18n.js";
import { S, loadParks } from "./state.js";

export async function membersView(view) {
  await loadParks(); // fresh health and lag
  const other = getLang() === "zh" ? "en" : "zh";
  const name = (p) => {
    const n = p.display_name || {};
    const main = n[getLang()] || n.en || n.zh || p.id;
    const alt = n[other] && n[other] !== main ? n[other] : "";
    return h("td", { "data-label": t("members.park") }, h("span", { class: "park-name" }, main), alt ? h("small", { class: "muted", lang: other === "zh" ? "zh-CN" : "en" }, " " + alt) : "");
  };
  const cell = (label, ...c) => h("td", { "data-label": label }, ...c);
  const self = S.park;
  const rows = [h("tr", { "data-park": self.id, class: "self" }, name(self),
    cell(t("members.country"), country(self.country)),
    cell(t("members.status"), h("span", { class: "badge status-live" }, t("members.self"))),
    cell(t("members.lag"), "—"), cell(t("members.since"), self.since ? when(self.since) : "—"))];
  for (const p of S.peers) {
    const feed = p.feed || {};
    const lag = feed.lag_ms !== undefined ? feed.lag_ms : p.lag_ms;
    rows.push(h("tr", { "data-park": p.park }, name({ ...p, id: p.park }),
      cell(t("members.country"), country(p.country)),
      cell(t("members.status"), h("span", { class: "badge health-" + p.health }, t("health." + (p.health || "unknown"))), " ",
        h("span", { class: feed.connected ? "badge status-live" : "badge status-stale" }, t(feed.connected ? "feed.connected" : "feed.disconnected"))),
      cell(t("members.lag"), lag !== undefined ? t("members.lag_value", { s: (lag / 1000).toFixed(1) }) : "—"),
      cell(t("members.since"), when(p.since || p.established_at))));
  }
  view.replaceChildren(h("h1", {}, t("members.title")),
    h("p", { class: "muted", id: "members-count" }, t("members.count", { n: rows.length })),
    S.peers.length ? "" : h("p", { class: "muted" }, t("members.none")),
    h("table", { class: "members", id: "members" },
      h("thead", {}, h("tr", {}, ["members.park", "members.country", "members.status", "members.lag", "members.since"].map((k) => h("th", { scope: "col" }, t(k))))),
      h("tbody", {}, rows)));
}
