#!/usr/bin/env bash
# make cluster-down: removes what scripts/cluster-up.sh made.
#
# By default it deletes the whole minikube profile (the cluster, Knative, Redis and its volume,
# the function's image). With KEEP_CLUSTER=1 it deletes only the namespace (the function, Redis,
# its data and the Secret) and keeps minikube and Knative for a faster next `make cluster-up`.
#
# Settings (environment), the same as for cluster-up:
#   MINIKUBE_PROFILE (kv-store), NAMESPACE (kv-store), KEEP_CLUSTER (unset)
set -euo pipefail

PROFILE=${MINIKUBE_PROFILE:-kv-store}
NAMESPACE=${NAMESPACE:-kv-store}
KEEP_CLUSTER=${KEEP_CLUSTER:-}

step() { printf '\n==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

profile_exists() {
    minikube -p "$PROFILE" status >/dev/null 2>&1 && return 0
    local profiles # a stopped profile is only listed
    profiles=$(minikube profile list -o json 2>/dev/null || true)
    case $profiles in *"\"Name\":\"$PROFILE\""*) return 0 ;; esac
    return 1
}

command -v minikube >/dev/null 2>&1 ||
    die "minikube is not installed, so there is no minikube profile to remove"

if ! profile_exists; then
    info "minikube profile '$PROFILE' does not exist: nothing to remove"
    exit 0
fi

if [ -n "$KEEP_CLUSTER" ]; then
    command -v kubectl >/dev/null 2>&1 ||
        die "kubectl is not installed; KEEP_CLUSTER=1 needs it to delete the namespace"
    step "Deleting namespace '$NAMESPACE' (function, Redis, its volume, Secret); minikube stays"
    kubectl --context "$PROFILE" delete namespace "$NAMESPACE" --ignore-not-found --wait=true
else
    step "Deleting minikube profile '$PROFILE' with everything in it"
    minikube delete -p "$PROFILE"
fi
info "done. A 'minikube tunnel -p $PROFILE' still open in another terminal can be stopped"
info "with Ctrl-C."
