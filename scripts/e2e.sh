#!/usr/bin/env bash
# make e2e: checks the deployed function on a live Knative cluster (after `make cluster-up`).
#
# 1. the black-box contract suite (tests/contract) against the route;
# 2. autoscaling: the service at zero pods, a first request that succeeds (its cold start is
#    reported), a spike load that takes the desired scale above 1 (python -m loadtest, which
#    writes its timeline and summary), and the return to zero pods after idling.
# Without a reachable cluster or the Knative Service it stops at once with one line, exit 2.
#
# Settings (environment):
#   KUBE_CONTEXT   kube context        (the minikube profile's, kv-store, if it exists; else current)
#   NAMESPACE, SERVICE                 (kv-store, kv-store)
#   FUNCTION_URL   the route           (the Knative Service's status.url; its name must resolve:
#                  sslip.io with `minikube tunnel`, or an /etc/hosts line for example.com)
#   E2E_OUT        output folder       (e2e-out: summary.json, coldstart.json, loadtest/ with
#                                      the timeline, predict/ with the model's prediction from
#                                      the client's in-flight count, predict-seen/ from the
#                                      pods' own reports)
#   E2E_IDLE_WAIT_SECONDS  how long to wait for zero pods (300)
#   E2E_LOAD_SECONDS, E2E_USERS        the spike (90 s, 40 users)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-.venv/bin/python}
NAMESPACE=${NAMESPACE:-kv-store}
SERVICE=${SERVICE:-kv-store}
E2E_OUT=${E2E_OUT:-e2e-out}
E2E_IDLE_WAIT_SECONDS=${E2E_IDLE_WAIT_SECONDS:-300}
E2E_LOAD_SECONDS=${E2E_LOAD_SECONDS:-90}
E2E_USERS=${E2E_USERS:-40}

no_cluster() { printf 'e2e: no live cluster: %s\n' "$*" >&2; exit 2; }
step() { printf '\n==> %s\n' "$*"; }
die() { printf 'e2e: %s\n' "$*" >&2; exit 1; }

# The local cluster (make localcluster-up) brings its own kubectl.
if local_env=$("$PYTHON" -m localcluster env 2>/dev/null); then
    eval "$local_env"
    PATH="$LOCALCLUSTER_BIN:$PATH"
fi
command -v kubectl >/dev/null 2>&1 || no_cluster "kubectl is not installed (make cluster-up first)"
if [ -z "${KUBE_CONTEXT:-}" ]; then
    if kubectl config get-contexts -o name 2>/dev/null | grep -qxF kv-store; then
        KUBE_CONTEXT=kv-store
    else
        KUBE_CONTEXT=$(kubectl config current-context 2>/dev/null) ||
            no_cluster "no kube context (make cluster-up first)"
    fi
fi
k() { kubectl --context "$KUBE_CONTEXT" --request-timeout=10s "$@"; }
url=$(k -n "$NAMESPACE" get ksvc "$SERVICE" -o jsonpath='{.status.url}' 2>/dev/null) ||
    no_cluster "Knative Service $NAMESPACE/$SERVICE not found in context '$KUBE_CONTEXT'"
case ${FUNCTION_URL:-$url} in
    *.example.com)
        [ -n "${FUNCTION_URL:-}" ] || die "the route $url has no DNS name (host-header mode):" \
            "add '<minikube ip> ${url#*://}' to /etc/hosts and set" \
            "FUNCTION_URL=http://${url#*://}:<Kourier's http2 node port>"
        ;;
esac
# On the local cluster the route's name (<service>.<namespace>.knative.test) is in no DNS: the
# run goes on in a mount namespace of its own whose /etc/hosts names the node for it. The
# machine's /etc/hosts is not touched.
if [ "$KUBE_CONTEXT" = "${LOCALCLUSTER_CONTEXT:-}" ] && [ -z "${FUNCTION_URL:-}" ] &&
    ! getent hosts "${url#*://}" >/dev/null; then
    hosts=$(mktemp)
    { cat /etc/hosts; printf '%s %s\n' "$LOCALCLUSTER_NODE_IP" "${url#*://}"; } > "$hosts"
    echo "e2e: ${url#*://} resolves to the local cluster's node $LOCALCLUSTER_NODE_IP for this run"
    # shellcheck disable=SC2016  # $0 and $@ belong to the inner sh
    exec unshare --mount -- sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$hosts" \
        env KUBE_CONTEXT="$KUBE_CONTEXT" "$0"
fi
FUNCTION_URL=${FUNCTION_URL:-$url}
[ -n "$FUNCTION_URL" ] || no_cluster "Knative Service $NAMESPACE/$SERVICE has no URL yet"
mkdir -p "$E2E_OUT"
echo "e2e: context $KUBE_CONTEXT, service $NAMESPACE/$SERVICE, route $FUNCTION_URL"
# cluster-up protects writes with a bearer token (Secret kv-store-tokens): the contract suite
# and the load test send it. Exported, never printed.
if [ -z "${FUNCTION_TOKEN:-}" ]; then
    FUNCTION_TOKEN=$(k -n "$NAMESPACE" get secret kv-store-tokens \
        -o jsonpath='{.data.write-token}' 2>/dev/null | base64 -d 2>/dev/null || true)
fi
export FUNCTION_TOKEN LOADTEST_TOKEN=${FUNCTION_TOKEN:-}

# How many pods of the service are not finished. A kubectl that fails (an API error, a timeout)
# stops the run with its message: read as an empty list, it would pass both scale-to-zero checks.
pods() {
    local listed errors
    errors=$(mktemp)
    if ! listed=$(k -n "$NAMESPACE" get pods -l "serving.knative.dev/service=$SERVICE" -o name \
        --field-selector=status.phase!=Succeeded,status.phase!=Failed 2>"$errors"); then
        die "cannot list the pods of $NAMESPACE/$SERVICE: $(head -c 500 "$errors")"
    fi
    rm -f "$errors"
    grep -c . <<<"$listed" || true
}

# Seconds until no pod of the service is left, or a failure after E2E_IDLE_WAIT_SECONDS.
wait_for_zero() {
    local waited=0 count
    count=$(pods) || exit 1
    while [ "$count" -ne 0 ]; do
        [ "$waited" -lt "$E2E_IDLE_WAIT_SECONDS" ] ||
            die "still $count pod(s) after ${waited}s without requests; scale to zero failed"
        sleep 5
        waited=$((waited + 5))
        count=$(pods) || exit 1
    done
    echo "$waited"
}

step "Contract suite against $FUNCTION_URL"
FUNCTION_URL=$FUNCTION_URL "$PYTHON" -m pytest tests/contract -q -p no:cacheprovider \
    --junitxml "$E2E_OUT/contract.xml"

step "Waiting for zero pods (Knative scales an idle revision away after about a minute)"
first_zero=$(wait_for_zero)
echo "zero pods after ${first_zero}s"

step "First request from zero (cold start), phase by phase from the pod's watch"
"$PYTHON" -m loadtest coldstart --url "$FUNCTION_URL" --kube-context "$KUBE_CONTEXT" \
    --namespace "$NAMESPACE" --service "$SERVICE" --runs 1 --out "$E2E_OUT" ||
    die "the first request from zero failed"

# The spike starts from zero pods, as the prediction below does.
step "Waiting for zero pods again before the load"
wait_for_zero >/dev/null

step "Spike load (${E2E_LOAD_SECONDS}s, $E2E_USERS users) with the Knative state recorded"
"$PYTHON" -m loadtest --url "$FUNCTION_URL" --profile spike --duration "$E2E_LOAD_SECONDS" \
    --users "$E2E_USERS" --out "$E2E_OUT/loadtest" \
    --kube-context "$KUBE_CONTEXT" --namespace "$NAMESPACE" --service "$SERVICE"
peak=$("$PYTHON" -c 'import json, sys
print(json.load(open(sys.argv[1]))["knative"]["peak_desired_scale"] or 0)' \
    "$E2E_OUT/loadtest/summary.json")
[ "$peak" -gt 1 ] || die "the desired scale never rose above 1 under load (peak $peak)"
echo "peak desired scale: $peak"

step "Waiting for the return to zero pods"
back_to_zero=$(wait_for_zero)
echo "zero pods again ${back_to_zero}s after the load test ended"

step "The autoscaler model (python -m loadtest predict) against what Knative did"
k -n "$NAMESPACE" get ksvc "$SERVICE" -o yaml > "$E2E_OUT/service.yaml"
k -n knative-serving get configmap config-autoscaler -o yaml > "$E2E_OUT/config-autoscaler.yaml"
pod_start=$("$PYTHON" -c 'import json, sys
print(json.load(open(sys.argv[1]))["summary"]["pod_ready"]["median"])' "$E2E_OUT/coldstart.json")
# Given the client's in-flight count (predict's default), then the pods' own reports.
for input in client seen; do
    out="$E2E_OUT/predict"
    [ "$input" = client ] || out="$E2E_OUT/predict-$input"
    "$PYTHON" -m loadtest predict --timeline "$E2E_OUT/loadtest/timeline.csv" \
        --concurrency "$input" --service "$E2E_OUT/service.yaml" \
        --config-autoscaler "$E2E_OUT/config-autoscaler.yaml" --pod-start-seconds "$pod_start" \
        --out "$out"
done
"$PYTHON" -m scripts.e2e_summary "$E2E_OUT" --route "$FUNCTION_URL" \
    --zero-after-load "$back_to_zero"
echo "e2e: passed; results in $E2E_OUT/ (summary.json, loadtest/, predict/, coldstart.json)"
