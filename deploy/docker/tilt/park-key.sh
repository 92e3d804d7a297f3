#!/bin/sh
# Tilt's park-key resource: makes sure the park has a signing key (created
# once, kept in .parkmesh/tilt/<park>, which git ignores) and that the
# cluster holds it as the Secret parkmesh-park-key the gateway mounts.
# Idempotent; run from the repository root.
set -eu
park=${1:?usage: park-key.sh PARK}
ns="parkmesh-$park"
dir=".parkmesh/tilt/$park"
if [ ! -f "$dir/keys/keyset.json" ]; then
  go run ./gateway/cmd/parkmesh init --park "$park" --data-dir "$dir"
fi
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$ns" create secret generic parkmesh-park-key --from-file="$dir/keys/" \
  --dry-run=client -o yaml | kubectl apply -f -
echo "park-key: $park's key is in Secret $ns/parkmesh-park-key"
