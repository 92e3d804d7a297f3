#!/bin/sh
# consul-tokens.sh PARK [DIR]: the Consul ACL tokens of a park's ParkMesh
# processes on Kubernetes (docs/deploy.md, "Consul ACLs"). Run it from the
# repository root after installing the Consul chart, and again to rotate a
# token (ROTATE=project, or ROTATE=directory,gateway …); the Tiltfile's
# consul-tokens resource runs it too.
#
# The chart (k8s/consul/values.yaml, global.acls.manageSystemACLs) turns
# ACLs on with default deny, bootstraps them, gives Consul's own agents
# their tokens and keeps its bootstrap (management) token in the Secret
# consul-bootstrap-acl-token. This script:
#   1. copies that token to DIR/consul-tokens/management.token (mode 0600;
#      DIR defaults to ./PARK, the park's master key directory);
#   2. runs consulacl (deploy/docker/cmd/consulacl; CONSULACL overrides how)
#      through a port-forward to the Consul servers: one policy and one token
#      per process, in DIR/consul-tokens/<process>/consul.token, kept when
#      still valid;
#   3. stores them as the Secret parkmesh-consul-tokens (keys directory,
#      project, talent, gateway) in namespace parkmesh-PARK, of which each
#      pod mounts its own key only (k8s/base/*.yaml).
# No token is printed or passed as an argument.
set -eu
park=${1:?usage: consul-tokens.sh PARK [DIR]}
dir=${2:-./$park}
ns="parkmesh-$park"
consul_ns=${CONSUL_NAMESPACE:-consul}
port=${CONSUL_FORWARD_PORT:-18599}
tokens="$dir/consul-tokens"
umask 077
mkdir -p "$tokens"

kubectl -n "$consul_ns" get secret consul-bootstrap-acl-token -o jsonpath='{.data.token}' |
  base64 -d >"$tokens/management.token"

kubectl -n "$consul_ns" port-forward service/consul-server "$port:8500" >/dev/null &
forward=$!
trap 'kill "$forward" 2>/dev/null || true' EXIT INT TERM

${CONSULACL:-go run ./deploy/docker/cmd/consulacl} -consul "127.0.0.1:$port" -park "$park" \
  -management-token-file "$tokens/management.token" -token-dir "$tokens" -rotate "${ROTATE:-}"

kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$ns" create secret generic parkmesh-consul-tokens \
  --from-file=directory="$tokens/directory/consul.token" \
  --from-file=project="$tokens/project/consul.token" \
  --from-file=talent="$tokens/talent/consul.token" \
  --from-file=gateway="$tokens/gateway/consul.token" \
  --dry-run=client -o yaml | kubectl apply -f -
echo "consul-tokens: $park's Consul tokens are in Secret $ns/parkmesh-consul-tokens"
if [ -n "${ROTATE:-}" ]; then
  echo "consul-tokens: restart what got a new token (kubectl -n $ns rollout restart statefulset/<process>), then delete its old token as printed above"
fi
