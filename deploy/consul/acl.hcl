# Consul ACLs for a ParkMesh park's own Consul (compose; the demo and the
# tests write the same settings, plus an initial management token, in
# deploy/testenv/consulagent). Nothing is allowed without a token; each
# ParkMesh process gets a token of its own with only the rights it needs
# (deploy/consulacl, run by the consul-acl-<park> job: docs/deploy.md,
# "Consul ACLs"). No secret here: the management token comes from Consul's
# one-time ACL bootstrap, and the agent's own token is set through the API
# and kept across restarts (enable_token_persistence).
acl {
  enabled                  = true
  default_policy           = "deny"
  enable_token_persistence = true
}
