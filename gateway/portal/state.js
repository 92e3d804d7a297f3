// What every view shares: the signed-in user, this park and the club's
// parks by id (so a park is always shown by its name, never its id).
import { get } from "./api.js";
import { getLang, t, list } from "./i18n.js";

export const S = {
  user: null, // {username, display_name, role, lang}
  park: null, // {id, display_name: {zh, en}, country}
  parks: new Map(), // id → {id, display_name, country, ...peer view}
  peers: [],
};

/** The controlled vocabularies (pkg/listing), in its order. */
export const VOCAB = {
  sector: ["new-materials", "biomedicine", "medical-devices", "aerospace", "ai", "semiconductors", "new-energy",
    "advanced-manufacturing", "information-technology", "agritech", "fintech", "environmental", "automotive", "other"],
  need: ["investment", "partner", "landing", "licensing", "talent", "mentoring", "market", "incubation", "rnd", "supply-chain"],
  org_type: ["company", "incubator", "accelerator", "university", "lab", "investor", "service_provider", "park_office"],
  size: ["1-10", "11-50", "51-200", "201-1000", "1000+"],
  stage: ["idea", "prototype", "pilot", "growth"],
  availability: ["mentor", "advisor", "full_time", "collaboration", "returnee"],
  currency: ["CNY", "USD", "EUR", "ILS", "GBP", "JPY", "HKD", "SGD", "KRW", "CHF", "RUB", "INR"],
  kind: ["organization", "project", "talent"],
};

/** loadParks reads this park's identity and its peers. */
export async function loadParks() {
  const [park, peers] = await Promise.all([get("/api/v1/park"), get("/api/v1/peers").catch(() => ({ peers: [] }))]);
  S.park = park;
  S.parks = new Map([[park.id, park]]);
  S.peers = peers.peers || [];
  for (const p of S.peers) S.parks.set(p.park, { ...p, id: p.park });
}

/** parkName is a park's display name in the current language. */
export function parkName(id) {
  const p = S.parks.get(id);
  const n = p && p.display_name;
  if (n) return n[getLang()] || n.en || n.zh || id;
  return id;
}

/** canEdit reports whether the user may change the park's listings. */
export const canEdit = () => !!S.user && (S.user.role === "editor" || S.user.role === "admin");

/** isOwn reports whether a listing is this park's. */
export const isOwn = (l) => !!S.park && l.park === S.park.id;

/** visibilityText describes who may see one of the park's listings. */
export function visibilityText(l) {
  if (l.visibility === "peers") return t("visibility.shared_with", { parks: list((l.share_with || []).map(parkName)) });
  return t("visibility." + (l.visibility || "club"));
}
