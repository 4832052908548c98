#!/usr/bin/env bash
# make localcluster-deploy: the function and its Redis on the local cluster (make localcluster-up).
#
# Steps: the two images built with podman (the function from the Dockerfile, Redis from Debian's
# redis-server) and loaded into the node -> a volume for Redis -> namespace and Secrets -> Redis
# -> the Knative Service (func deploy when DEPLOY_WITH=func, else kubectl apply -k of
# overlays/localcluster) -> Ready -> the route. The deploy steps are scripts/lib/deploy.sh, the
# same that make cluster-up runs on minikube. Running it again is safe.
#
# Settings (environment):
#   NAMESPACE     namespace of the function and Redis   (kv-store)
#   DEPLOY_WITH   kubectl | func | func-build           (kubectl; func is the one the cluster built)
#                 func: func deploy of the image built here (--build=false);
#                 func-build: func's own host builder, pushed to the cluster's registry
#   IMAGE_TAG     tag of the function's image           (a digest of its sources)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-.venv/bin/python}
NAMESPACE=${NAMESPACE:-kv-store}
DEPLOY_WITH=${DEPLOY_WITH:-kubectl}
KUSTOMIZE_BASE=overlays/localcluster
REDIS_KUSTOMIZATION=overlays/localcluster/redis
REDIS_IMAGE=dev.local/redis-debian:bookworm

step() { printf '\n==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The cluster's own kubectl and func, its context, its node address, its volume folder.
eval "$("$PYTHON" -m localcluster env)" || die "the local cluster is not running: make localcluster-up"
export PATH="$LOCALCLUSTER_BIN:$PATH"
FUNC=$LOCALCLUSTER_FUNC
KUBE_CONTEXT=$LOCALCLUSTER_CONTEXT
k() { kubectl --context "$KUBE_CONTEXT" "$@"; }

work_dir=$(mktemp -d)
overlay_dir=""
cleanup() { rm -rf "$work_dir" ${overlay_dir:+"$overlay_dir"}; }
trap cleanup EXIT

# shellcheck source=scripts/lib/deploy.sh
. "$ROOT/scripts/lib/deploy.sh"

load_images() {
    IMAGE="$IMAGE_REPOSITORY:${IMAGE_TAG:-src-$(source_digest)}"
    step "Images: $IMAGE and $REDIS_IMAGE (podman), loaded into the node"
    scripts/build-image.sh "$IMAGE" >/dev/null
    scripts/build-image.sh "$REDIS_IMAGE" tests/deploy/images tests/deploy/images/Containerfile >/dev/null
    "$PYTHON" -m localcluster load "$IMAGE"
    "$PYTHON" -m localcluster load "$REDIS_IMAGE"
}

# The cluster has no volume provisioner: Redis's claim (data-redis-0) binds to a volume made here,
# a folder in the cluster's state that `make localcluster-down` removes.
redis_volume() {
    step "A volume for Redis's append-only file"
    local folder="$LOCALCLUSTER_VOLUMES/$NAMESPACE-redis-data"
    mkdir -p "$folder"
    chown 999:999 "$folder"  # the StatefulSet's runAsUser
    k apply -f - <<YAML
apiVersion: v1
kind: PersistentVolume
metadata:
  name: $NAMESPACE-redis-data
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  claimRef: {namespace: $NAMESPACE, name: data-redis-0}
  hostPath: {path: $folder, type: Directory}
YAML
}

# func's own build (docs/func.md, "The func way"): its host builder runs pip on this machine and
# lays the result on a base image, which here is the Debian-made one, pushed to the cluster's
# registry; func pushes the function's image there too and Knative pulls it by digest. pip must
# run on the base's Python (3.11.2, Debian's): a newer patch release drops async-timeout, which
# redis-py needs below 3.11.3. The build runs in a scratch copy of the project, so the tree stays
# as it is. A Service that kubectl made keeps its security context (user 10001) under func,
# which cannot read func's image (its files belong to user 1000): that Service is replaced.
deploy_function_with_func_build() {
    step "Deploying the Knative Service with func's own build (host builder, registry $LOCALCLUSTER_REGISTRY)"
    local base="$LOCALCLUSTER_REGISTRY/debian-python:bookworm" python_dir="$work_dir/python"
    CONTAINERS_CONF=${CONTAINERS_CONF:-$ROOT/scripts/podman/containers.conf} \
        podman push --quiet --tls-verify=false "$(scripts/build-base-image.sh)" "$base"
    mkdir -p "$python_dir" "$work_dir/project"
    ln -s /usr/bin/python3 "$python_dir/python"
    git archive HEAD | tar -x -C "$work_dir/project"
    local live
    live=$(k -n "$NAMESPACE" get ksvc "$SERVICE" --ignore-not-found \
        -o jsonpath='{.spec.template.spec.containers[0].image}')
    if [ -n "$live" ] && [ "${live#"$LOCALCLUSTER_REGISTRY/"}" = "$live" ]; then
        info "replacing the Service made from the project's own image ($live)"
        k -n "$NAMESPACE" delete ksvc "$SERVICE" --wait=true
    fi
    (cd "$work_dir/project" && PATH="$python_dir:$PATH" "$FUNC" deploy --builder host \
        --image "$LOCALCLUSTER_REGISTRY/$SERVICE" --registry-insecure --base-image "$base" \
        --namespace "$NAMESPACE")
}

show_route() {
    local url host
    url=$(k -n "$NAMESPACE" get ksvc "$SERVICE" -o jsonpath='{.status.url}')
    host=${url#*://}
    step "Route to the function"
    cat <<EOF
The function answers through Traefik at http://$LOCALCLUSTER_NODE_IP/ with the header Host: $host

  TOKEN=\$(kubectl --context $KUBE_CONTEXT -n $NAMESPACE get secret $TOKEN_SECRET -o jsonpath='{.data.write-token}' | base64 -d)
  curl -s -H 'Host: $host' -X PUT -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' -d '{"hello": 999}' http://$LOCALCLUSTER_NODE_IP/testurl
  curl -s -H 'Host: $host' http://$LOCALCLUSTER_NODE_IP/testurl

Next: make e2e (the contract suite and the scaling scenario through this route).
EOF
}

load_images
redis_volume
create_namespace_and_secret
deploy_redis
case $DEPLOY_WITH in
    func) deploy_function_with_func ;;
    func-build) deploy_function_with_func_build ;;
    *) deploy_function_with_kubectl ;;
esac
wait_until_ready
show_route
