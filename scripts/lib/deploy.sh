# shellcheck shell=bash
# shellcheck disable=SC2154  # work_dir and the other inputs below are the caller's
# The function and its Redis, deployed into a cluster that runs Knative Serving: sourced by
# scripts/cluster-up.sh (minikube) and scripts/localcluster-deploy.sh (the local cluster).
# The caller defines step, info, die and k (kubectl on its context) and sets KUBE_CONTEXT,
# NAMESPACE, work_dir and, before deploying the function, IMAGE (already on the node).

SERVICE=kv-store
SECRET=kv-store-redis
TOKEN_SECRET=kv-store-tokens
IMAGE_REPOSITORY=dev.local/kv-store
# What is applied: the manifests in k8s/, or an overlay of them (the local cluster's Redis image).
KUSTOMIZE_BASE=${KUSTOMIZE_BASE:-k8s}
REDIS_KUSTOMIZATION=${REDIS_KUSTOMIZATION:-k8s/redis/}
FUNC=${FUNC:-func}

create_namespace_and_secret() {
    step "Namespace '$NAMESPACE' and Secret '$SECRET' (Redis password and the function's REDIS_URL)"
    k create namespace "$NAMESPACE" --dry-run=client -o yaml | k apply -f -
    if k -n "$NAMESPACE" get secret "$SECRET" >/dev/null 2>&1; then
        info "Secret exists: kept, so Redis and its data keep their password"
        if [ -n "${REDIS_PASSWORD:-}" ]; then info "(REDIS_PASSWORD is not applied to it)"; fi
        if [ -z "$(k -n "$NAMESPACE" get secret "$SECRET" -o jsonpath='{.data.function-password}')" ]; then
            die "Secret '$SECRET' has no function-password (made before Redis had the function's own
user). Delete it (kubectl --context $KUBE_CONTEXT -n $NAMESPACE delete secret $SECRET) and run again:
Redis keeps its data on its volume and gets new passwords."
        fi
    else
        local password=${REDIS_PASSWORD:-} function_password
        # Hex: random passwords that need no escaping anywhere.
        if [ -z "$password" ]; then password=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n'); fi
        function_password=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
        case $password in *[[:cntrl:]]*) die "REDIS_PASSWORD must not hold control characters" ;; esac
        # Each value from its own file, byte for byte (an env file would cut at newlines and
        # '='); printf is a shell builtin, so no password appears in a process list. The function
        # connects as Redis's least-privilege user kv-function (k8s/redis/statefulset.yaml).
        k -n "$NAMESPACE" create secret generic "$SECRET" \
            --from-file=password=<(printf '%s' "$password") \
            --from-file=function-password=<(printf '%s' "$function_password") \
            --from-file=url=<(printf 'redis://kv-function:%s@redis:6379/0' "$function_password")
        if [ -n "${REDIS_PASSWORD:-}" ]; then info "created with REDIS_PASSWORD"
        else info "created with a random password"; fi
    fi
    # The bearer token PUT and DELETE need (WRITE_TOKEN in k8s/knative-service.yaml, func.yaml).
    if k -n "$NAMESPACE" get secret "$TOKEN_SECRET" >/dev/null 2>&1; then
        info "Secret '$TOKEN_SECRET' exists: kept, so clients keep their write token"
    else
        k -n "$NAMESPACE" create secret generic "$TOKEN_SECRET" --from-env-file=<(
            printf 'write-token=%s\n' "$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')")
        info "Secret '$TOKEN_SECRET' created with a random write token; read it with:"
        info "  kubectl -n $NAMESPACE get secret $TOKEN_SECRET -o jsonpath='{.data.write-token}' | base64 -d"
    fi
}

deploy_redis() {
    step "Deploying Redis (StatefulSet, append-only file on a volume, Service, NetworkPolicy)"
    k apply -n "$NAMESPACE" -k "$REDIS_KUSTOMIZATION"
    k -n "$NAMESPACE" rollout status statefulset/redis --timeout=300s
}

# The same sources give the same tag, so a second run creates no new revision.
source_digest() {
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files -z --cached --others --exclude-standard -- \
            Dockerfile .dockerignore requirements.txt requirements-function.txt constraints.txt \
            pyproject.toml function |
            while IFS= read -r -d '' file; do
                if [ -f "$file" ]; then printf '%s %s\n' "$(git hash-object -- "$file")" "$file"; fi
            done | git hash-object --stdin | cut -c1-12
    else
        date +%Y%m%d%H%M%S
    fi
}


# What a func deploy is made from: the image and func.yaml. Recorded on the Service, so that a
# rerun with both unchanged skips func, which would otherwise create a new revision every time
# (it adds BUILT=<time> to the environment: knative/func pkg/k8s/deployer.go ProcessEnvs).
DEPLOYED_FROM=kv-store.dev/deployed-from

deploy_function_with_func() {
    step "Deploying the Knative Service with func (func.yaml; image built above, no func build)"
    local fingerprint deployed
    fingerprint=$( (printf '%s\n' "$IMAGE"; cat func.yaml) | git hash-object --stdin)
    deployed=$(k -n "$NAMESPACE" get ksvc "$SERVICE" --ignore-not-found \
        -o go-template="{{index .metadata.annotations \"$DEPLOYED_FROM\"}}" 2>/dev/null || true)
    if [ "$deployed" = "$fingerprint" ]; then
        info "image and func.yaml unchanged since the last deploy: func not run, no new revision"
        return 0
    fi
    # func writes into the function's folder (.func/, .gitignore, and func.yaml rewritten without
    # its comments); it gets a copy of func.yaml in a scratch folder, so the tree stays as it is.
    # Its own kubeconfig pins func to this profile, whatever the current context is.
    cp func.yaml "$work_dir/"
    k config view --raw --minify --flatten > "$work_dir/kubeconfig"
    KUBECONFIG="$work_dir/kubeconfig" kubectl config use-context "$KUBE_CONTEXT" >/dev/null
    # func also tries to read the image from its registry to check pull permissions; dev.local
    # is no registry, so it warns ("error while checking pull secrets"). The node has the image
    # and the kubelet never pulls it (the tag is not :latest, so the pull policy is IfNotPresent).
    KUBECONFIG="$work_dir/kubeconfig" "$FUNC" deploy --path "$work_dir" --namespace "$NAMESPACE" \
        --image "$IMAGE" --build=false --push=false
    k -n "$NAMESPACE" annotate ksvc "$SERVICE" --overwrite "$DEPLOYED_FROM=$fingerprint" >/dev/null
}

deploy_function_with_kubectl() {
    step "Deploying the Knative Service with kubectl apply -k ($KUSTOMIZE_BASE/, image $IMAGE)"
    # A throwaway overlay sets the image tag; it must sit beside k8s/ (kustomize takes only
    # relative paths to other kustomizations).
    overlay_dir=$(mktemp -d "$ROOT/.kustomize-XXXXXX")
    printf 'resources:\n  - ../%s\nimages:\n  - name: %s\n    newTag: %s\n' \
        "$KUSTOMIZE_BASE" "$IMAGE_REPOSITORY" "${IMAGE##*:}" > "$overlay_dir/kustomization.yaml"
    k apply -n "$NAMESPACE" -k "$overlay_dir"
    # A client-side apply keeps annotations it did not set: without this, a later func deploy
    # from an unchanged tree would be skipped while the live Service is the one from k8s/.
    k -n "$NAMESPACE" annotate ksvc "$SERVICE" "$DEPLOYED_FROM-" >/dev/null
}

wait_until_ready() {
    step "Waiting for the Knative Service '$SERVICE' to be Ready"
    if ! k -n "$NAMESPACE" wait "ksvc/$SERVICE" --for=condition=Ready --timeout=300s; then
        k -n "$NAMESPACE" get ksvc "$SERVICE" -o wide || true
        die "not Ready; see: kubectl --context $KUBE_CONTEXT -n $NAMESPACE describe ksvc $SERVICE"
    fi
}
