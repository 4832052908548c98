#!/usr/bin/env bash
# make cluster-up: a local Knative cluster on minikube running the function and its Redis.
#
# Steps: minikube -> Knative Serving -> Kourier -> default domain -> namespace and Redis Secret
# -> Redis -> the function's image (built inside minikube) -> the Knative Service (with func when
# it is installed, else kubectl apply -k) -> wait until Ready -> the route URL and curl commands.
# Running it again is safe: each step checks what exists or applies declaratively, and an
# unchanged tree gives the same image tag and no new revision (with func too: see deploy_function_with_func).
#
# Settings (environment):
#   MINIKUBE_PROFILE   minikube profile to create or reuse          (kv-store)
#   NAMESPACE          namespace of the function and Redis          (kv-store)
#   KNATIVE_VERSION    Knative Serving release                      (knative-v1.23.0)
#   KOURIER_VERSION    net-kourier release                          (= KNATIVE_VERSION)
#   KUBERNETES_VERSION Kubernetes version for a new profile         (v1.34.0)
#   MINIKUBE_CPUS, MINIKUBE_MEMORY, MINIKUBE_DRIVER  (4 or the host's CPUs if fewer, 4096, minikube's)
#   MINIKUBE_CNI       network plugin; Calico enforces NetworkPolicy (calico)
#   DEPLOY_WITH        auto | func | kubectl                        (auto: func when installed)
#   DOMAIN_MODE        sslip (URL under sslip.io, needs `minikube tunnel`)
#                      | host-header (example.com, curl with a Host header)   (sslip)
#   TUNNEL_WAIT_SECONDS  how long to wait for `minikube tunnel`     (180)
#   DOMAIN_JOB_WAIT_SECONDS  how long to wait for the sslip.io Job  (300)
#   IMAGE_TAG          tag of the function's image                  (a digest of its sources)
#   REDIS_PASSWORD     password for a new Secret; any text without control characters
#                      (random hex; an existing Secret is kept)
set -euo pipefail

PROFILE=${MINIKUBE_PROFILE:-kv-store}
NAMESPACE=${NAMESPACE:-kv-store}
KNATIVE_VERSION=${KNATIVE_VERSION:-knative-v1.23.0}
KOURIER_VERSION=${KOURIER_VERSION:-$KNATIVE_VERSION}
KUBERNETES_VERSION=${KUBERNETES_VERSION:-v1.34.0}
MINIKUBE_CPUS=${MINIKUBE_CPUS:-} # empty: 4, or the host's CPUs where it has fewer (size_node)
MINIKUBE_MEMORY=${MINIKUBE_MEMORY:-4096}
MINIKUBE_CNI=${MINIKUBE_CNI:-calico}
DEPLOY_WITH=${DEPLOY_WITH:-auto}
DOMAIN_MODE=${DOMAIN_MODE:-sslip}
TUNNEL_WAIT_SECONDS=${TUNNEL_WAIT_SECONDS:-180}
DOMAIN_JOB_WAIT_SECONDS=${DOMAIN_JOB_WAIT_SECONDS:-300}
POLL_SECONDS=${POLL_SECONDS:-5} # between checks of the tunnel, the Job and the route

KUBE_CONTEXT=$PROFILE

SERVING_RELEASES=https://github.com/knative/serving/releases/download/$KNATIVE_VERSION
KOURIER_RELEASES=https://github.com/knative-extensions/net-kourier/releases/download
KOURIER_RELEASES=$KOURIER_RELEASES/$KOURIER_VERSION

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# Namespace, Secrets, Redis and the function: shared with the local cluster's deploy.
# shellcheck source=scripts/lib/deploy.sh
. "$ROOT/scripts/lib/deploy.sh"

step() { printf '\n==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
# Every kubectl call names the profile's context, so no other cluster is ever touched.
k() { kubectl --context "$PROFILE" "$@"; }

work_dir=$(mktemp -d)
overlay_dir=""
cleanup() { rm -rf "$work_dir" ${overlay_dir:+"$overlay_dir"}; }
trap cleanup EXIT

FUNC_INSTALL=https://knative.dev/docs/functions/install-func/

require() {
    local tool=$1 hint=$2
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed. $hint"
}

check_prerequisites() {
    step "Checking prerequisites"
    require minikube "Install it: https://minikube.sigs.k8s.io/docs/start/"
    require kubectl "Install it: https://kubernetes.io/docs/tasks/tools/"
    case $DEPLOY_WITH in
        auto)
            if command -v func >/dev/null 2>&1; then
                DEPLOY_WITH=func
            else
                DEPLOY_WITH=kubectl
                info "func not found: the Knative Service is applied with kubectl -k k8s/"
                info "(to deploy with func instead, install it: $FUNC_INSTALL)"
            fi
            ;;
        func) require func "Install it ($FUNC_INSTALL) or use DEPLOY_WITH=kubectl" ;;
        kubectl) ;;
        *) die "DEPLOY_WITH must be auto, func or kubectl, not '$DEPLOY_WITH'" ;;
    esac
    case $DOMAIN_MODE in
        sslip | host-header) ;;
        *) die "DOMAIN_MODE must be sslip or host-header, not '$DOMAIN_MODE'" ;;
    esac
    info "minikube, kubectl found; the function is deployed with $DEPLOY_WITH"
}

# CPU the node's own pods request, in millicores: kubeadm's control plane 750, Calico 250, Knative
# Serving 600, Kourier 400, Redis 100 (tests/deploy/test_cluster_scripts.py adds them up); and a
# function pod: 100 for the function, 25 for Knative's queue-proxy.
PLATFORM_MILLICORES=2100
FUNCTION_POD_MILLICORES=125
# Knative Serving knative-v1.23 refuses Kubernetes older than this (knative.dev/pkg version.go).
MIN_KUBERNETES_VERSION=v1.34.0

# minikube refuses more CPUs than the host has (cmd/minikube/cmd/start.go), and GitHub's standard
# runners for private repositories have 2: the node gets 4, or all the host has where it has fewer,
# and the script says how many function pods that schedules.
size_node() {
    local host max_scale room
    host=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
    if [ -z "$MINIKUBE_CPUS" ]; then
        MINIKUBE_CPUS=$((host < 4 ? host : 4))
    fi
    max_scale=$(sed -n 's|.*autoscaling.knative.dev/max-scale: "\([0-9]*\)".*|\1|p' \
        k8s/knative-service.yaml | head -1)
    room=$(((MINIKUBE_CPUS * 1000 - PLATFORM_MILLICORES) / FUNCTION_POD_MILLICORES))
    if [ "$room" -lt 1 ]; then
        die "a node of $MINIKUBE_CPUS CPU(s) (this host has $host) cannot schedule the function:" \
            "Kubernetes, Calico, Knative and Kourier request ${PLATFORM_MILLICORES}m of it." \
            "Use a machine with 3 CPUs or more (4 for max-scale's $max_scale pods)."
    fi
    if [ "$room" -lt "$max_scale" ]; then
        info "$MINIKUBE_CPUS CPUs for the node (this host has $host): room for $room function pods;"
        info "max-scale is $max_scale, so under heavy load pods beyond $room stay Pending."
        info "With 4 CPUs all fit; or lower max-scale in k8s/knative-service.yaml and func.yaml."
    else
        info "$MINIKUBE_CPUS CPUs for the node: room for $room function pods (max-scale $max_scale)"
    fi
}

# An old profile or KUBERNETES_VERSION would otherwise end in a bare 300 s wait for Knative.
check_kubernetes_version() {
    local server
    server=$(k version -o json 2>/dev/null |
        sed -n 's/.*"gitVersion": *"\(v[0-9][0-9.]*\).*/\1/p' | tail -1) ||
        true
    [ -n "$server" ] || die "cannot read the Kubernetes version of profile '$PROFILE' (kubectl version)"
    if [ "$(printf '%s\n' "$MIN_KUBERNETES_VERSION" "$server" | sort -V | head -1)" \
        != "$MIN_KUBERNETES_VERSION" ]; then
        die "profile '$PROFILE' runs Kubernetes $server; Knative Serving $KNATIVE_VERSION needs" \
            "$MIN_KUBERNETES_VERSION or later. Delete it (make cluster-down) and run make cluster-up" \
            "again (KUBERNETES_VERSION, now $KUBERNETES_VERSION, sets a new profile's version)."
    fi
    info "Kubernetes $server (Knative Serving $KNATIVE_VERSION needs $MIN_KUBERNETES_VERSION or later)"
}

start_minikube() {
    step "Starting minikube profile '$PROFILE'"
    if [ "$(minikube -p "$PROFILE" status --format '{{.APIServer}}' 2>/dev/null)" = Running ]; then
        info "already running"
    else
        size_node
        local args=(start -p "$PROFILE" --kubernetes-version "$KUBERNETES_VERSION"
            --cpus "$MINIKUBE_CPUS" --memory "$MINIKUBE_MEMORY" --cni "$MINIKUBE_CNI")
        if [ -n "${MINIKUBE_DRIVER:-}" ]; then args+=(--driver "$MINIKUBE_DRIVER"); fi
        minikube "${args[@]}"
    fi
    check_kubernetes_version
}

install_knative_serving() {
    step "Installing Knative Serving $KNATIVE_VERSION (CRDs, then the core components)"
    k apply -f "$SERVING_RELEASES/serving-crds.yaml"
    k wait --for=condition=Established --timeout=120s crd/services.serving.knative.dev
    k apply -f "$SERVING_RELEASES/serving-core.yaml"
    info "waiting for the Knative Serving deployments"
    k -n knative-serving wait --for=condition=Available --timeout=300s deployment --all
}

install_kourier() {
    step "Installing Kourier $KOURIER_VERSION and making it Knative's ingress"
    k apply -f "$KOURIER_RELEASES/kourier.yaml"
    k -n knative-serving patch configmap/config-network --type merge \
        -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
    info "waiting for the Kourier gateway and controller"
    k -n kourier-system wait --for=condition=Available --timeout=300s deployment --all
    k -n knative-serving wait --for=condition=Available --timeout=300s deployment --all
}

# The catch-all domains in config-domain, one a line (keys without a label selector; `_example`
# is documentation).
domain_keys() {
    # shellcheck disable=SC2016 # a Go template, not a shell expansion
    k -n knative-serving get configmap config-domain \
        -o go-template='{{range $key, $value := .data}}{{$key}}{{"\n"}}{{end}}' |
        grep -v '^_example$' || true
}

# Leaves exactly the domain $1 in config-domain (none when $1 is empty). Knative picks the
# lexicographically smallest of several catch-all domains (knative/serving
# pkg/reconciler/route/config/domain.go), so a key left by the other mode would win or lose by
# its spelling alone.
keep_only_domain() {
    local wanted=$1 key patch=""
    while IFS= read -r key; do
        [ -n "$key" ] && [ "$key" != "$wanted" ] && patch+="\"$key\":null,"
    done < <(domain_keys)
    if [ -n "$wanted" ]; then patch+="\"$wanted\":\"\","; fi
    [ -n "$patch" ] || return 0
    k -n knative-serving patch configmap/config-domain --type merge \
        -p "{\"data\":{${patch%,}}}" >/dev/null
}

configure_domain() {
    if [ "$DOMAIN_MODE" = sslip ]; then
        step "Default domain: sslip.io (set once Kourier has an external IP, below)"
    else
        step "Default domain: example.com (no DNS; requests carry a Host header)"
        keep_only_domain example.com
        info "config-domain holds example.com alone"
    fi
}

# $1 percent-encoded for the user-information part of a URL (RFC 3986 unreserved kept).
url_encode() {
    local text=$1 encoded="" char i
    local LC_ALL=C
    for ((i = 0; i < ${#text}; i++)); do
        char=${text:i:1}
        case $char in
            [A-Za-z0-9._~-]) encoded+=$char ;;
            *) encoded+=$(printf '%%%02X' "'$char") ;;
        esac
    done
    printf '%s' "$encoded"
}

build_image() {
    IMAGE="$IMAGE_REPOSITORY:${IMAGE_TAG:-src-$(source_digest)}"
    step "Building $IMAGE inside minikube from the Dockerfile"
    info "no registry: the image goes straight into the node, and Knative does not resolve"
    info "dev.local tags to digests"
    # `minikube image build` exits 0 even when the build fails (minikube
    # pkg/minikube/machine/build_images.go logs the error and returns nil), so the image list
    # is the only sign of success.
    local log="$work_dir/image-build.log"
    minikube -p "$PROFILE" image build -t "$IMAGE" . 2>&1 | tee "$log" || true
    if ! minikube -p "$PROFILE" image ls | grep -qxF "$IMAGE"; then
        printf 'error: the image %s was not built; the build said:\n' "$IMAGE" >&2
        cat "$log" >&2
        exit 1
    fi
    info "built: $IMAGE is in the node"
}

kourier_external_ip() {
    k -n kourier-system get service kourier -o jsonpath='{.status.loadBalancer.ingress[0].ip}'
}

wait_for_tunnel() {
    local waited=0
    while [ -z "$(kourier_external_ip)" ]; do
        if [ "$waited" -ge "$TUNNEL_WAIT_SECONDS" ]; then return 1; fi
        sleep "$POLL_SECONDS"
        waited=$((waited + POLL_SECONDS))
    done
}

# $1: base URL; $2: Host header to send, or empty.
print_requests() {
    local base=$1 host=$2 curl="curl -s"
    if [ -n "$host" ]; then curl="curl -s -H 'Host: $host'"; fi
    cat <<EOF

The function answers at $base${host:+ (with the header Host: $host)}. Writes need the token
in the Secret $TOKEN_SECRET. The article's requests:

  TOKEN=\$(kubectl --context $PROFILE -n $NAMESPACE get secret $TOKEN_SECRET -o jsonpath='{.data.write-token}' | base64 -d)
  $curl -X PUT -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' -d '{"hello": 999}' $base/testurl
  $curl $base/testurl
  $curl $base/

After about a minute without requests the function has no pod left; the next request waits
while one starts (scale from zero). Watch the pods come and go:
  kubectl --context $PROFILE -n $NAMESPACE get pods -l serving.knative.dev/service=$SERVICE -w
EOF
}

show_route_with_host_header() {
    local url ip base
    url=$(k -n "$NAMESPACE" get ksvc "$SERVICE" -o jsonpath='{.status.url}')
    ip=$(kourier_external_ip)
    if [ -n "$ip" ]; then
        info "through Kourier's external IP $ip (minikube tunnel is running)"
        base="http://$ip"
    else
        local node_port
        node_port=$(k -n kourier-system get service kourier \
            -o jsonpath='{.spec.ports[?(@.name=="http2")].nodePort}')
        base="http://$(minikube -p "$PROFILE" ip):$node_port"
        info "through Kourier's node port on the minikube IP. Where that IP is not reachable from"
        info "this machine (e.g. the docker driver on macOS), run 'minikube tunnel -p $PROFILE'"
        info "in a second terminal and run 'make cluster-up' again."
    fi
    print_requests "$base" "${url#*://}"
}

# The default-domain Job's state: complete, failed, running or absent.
domain_job_state() {
    local state
    state=$(k -n knative-serving get job default-domain --ignore-not-found -o go-template='
        {{- range .status.conditions}}{{if eq .status "True"}}{{.type}} {{end}}{{end}}')
    case $state in
        *Complete*) echo complete ;;
        *Failed*) echo failed ;;
        "") if k -n knative-serving get job default-domain >/dev/null 2>&1; then echo running
            else echo absent; fi ;;
        *) echo running ;;
    esac
}

# Runs Knative's default-domain Job afresh: a finished Job is not rerun by applying it again,
# and the Job leaves the domain alone (and succeeds) when any catch-all domain exists, so the
# old ones are removed first (knative/serving cmd/default-domain/main.go).
run_domain_job() {
    keep_only_domain ""
    k -n knative-serving delete job default-domain --ignore-not-found --wait=true >/dev/null
    k apply -f "$SERVING_RELEASES/serving-default-domain.yaml"
    info "waiting up to ${DOMAIN_JOB_WAIT_SECONDS}s for the default-domain Job"
    local waited=0 state
    while :; do
        state=$(domain_job_state)
        case $state in
            complete) return 0 ;;
            failed)
                k -n knative-serving logs job/default-domain --tail=20 >&2 || true
                die "the default-domain Job failed (its log is above). Run 'make cluster-up'" \
                    "again to retry it, or use DOMAIN_MODE=host-header" ;;
        esac
        if [ "$waited" -ge "$DOMAIN_JOB_WAIT_SECONDS" ]; then
            die "the default-domain Job is still $state after ${waited}s; see:" \
                "kubectl --context $PROFILE -n knative-serving logs job/default-domain"
        fi
        sleep "$POLL_SECONDS"
        waited=$((waited + POLL_SECONDS))
    done
}

show_route_with_sslip() {
    local ip
    if [ -z "$(kourier_external_ip)" ]; then
        info "Kourier's LoadBalancer has no external IP yet. In a second terminal, run"
        info "and keep open:"
        info ""
        info "    minikube tunnel -p $PROFILE"
        info ""
        info "(it may ask for your password to add a network route)."
        info "Waiting up to ${TUNNEL_WAIT_SECONDS}s for it..."
        if ! wait_for_tunnel; then
            info "Still no tunnel. Everything else is deployed: start the tunnel, then run"
            info "'make cluster-up' again (its steps find their work done; it then sets the domain)."
            info "Or, without a tunnel: DOMAIN_MODE=host-header make cluster-up"
            return 0
        fi
    fi
    ip=$(kourier_external_ip)
    info "Kourier's external IP: $ip (reachable while 'minikube tunnel -p $PROFILE' runs)"
    if [ "$(domain_keys)" = "$ip.sslip.io" ]; then
        info "config-domain already holds $ip.sslip.io alone"
    else
        info "the default-domain Job sets the domain $ip.sslip.io"
        run_domain_job
        [ "$(domain_keys)" = "$ip.sslip.io" ] ||
            die "config-domain holds '$(domain_keys | tr '\n' ' ')', not $ip.sslip.io"
    fi
    local url="" waited=0
    while [ "$waited" -le 120 ]; do
        url=$(k -n "$NAMESPACE" get ksvc "$SERVICE" -o jsonpath='{.status.url}')
        case $url in *"$ip.sslip.io") break ;; esac
        sleep "$POLL_SECONDS"
        waited=$((waited + POLL_SECONDS))
    done
    case $url in
        *"$ip.sslip.io") print_requests "$url" "" ;;
        *) die "the route's URL is still '$url', not under $ip.sslip.io; see:" \
            "kubectl --context $PROFILE -n $NAMESPACE describe ksvc $SERVICE" ;;
    esac
}

show_route() {
    step "Route to the function"
    if [ "$DOMAIN_MODE" = sslip ]; then show_route_with_sslip; else show_route_with_host_header; fi
}

check_prerequisites
start_minikube
install_knative_serving
install_kourier
configure_domain
create_namespace_and_secret
deploy_redis
build_image
if [ "$DEPLOY_WITH" = func ]; then deploy_function_with_func; else deploy_function_with_kubectl; fi
wait_until_ready
show_route
