// Package configcheck holds the checks of ParkMesh's deployment files that
// need no container engine and no cluster: the kustomize overlays render
// with `kubectl kustomize` and decode strictly into k8s.io/api types with
// the security, probes, limits and exposure a park needs; the compose file
// loads with the compose-spec loader and wires two peered parks through
// their federation ports; the Dockerfiles build static binaries run by an
// unprivileged user; the Tiltfile runs in a Starlark interpreter and
// deploys what it should; the compose jobs' scripts work with the real
// admin CLI; the systemd units pass systemd-analyze verify on a stand-in
// host and keep their hardening; and every flag the deployment files and
// docs/deploy.md name exists.
//
// It is a module of its own so that k8s.io/api, compose-go and Starlark
// stay out of the product's go.mod. Run it with `make configcheck`.
package configcheck
