"""overlays/cluster-local: k8s/ with the Knative Service visible only inside the cluster.

Rendered with the real `kubectl kustomize`, like k8s/ itself (whose objects test_manifest_schemas
checks): the one difference from k8s/ is Knative's visibility label on the Service.
"""

from __future__ import annotations

import copy

from tests.deploy.manifests import (
    KNATIVE_API_VERSION,
    ROOT,
    Manifest,
    render_kustomization,
    the_one,
)

VISIBILITY = "networking.knative.dev/visibility"


def test_cluster_local_overlay_differs_from_k8s_only_in_visibility(
    rendered: list[Manifest],
) -> None:
    overlay = render_kustomization(ROOT / "overlays" / "cluster-local")
    service = the_one(overlay, KNATIVE_API_VERSION, "Service")
    assert service["metadata"]["labels"][VISIBILITY] == "cluster-local"

    without_label = copy.deepcopy(overlay)
    del the_one(without_label, KNATIVE_API_VERSION, "Service")["metadata"]["labels"][VISIBILITY]
    assert sorted(without_label, key=repr) == sorted(rendered, key=repr)


def test_k8s_alone_stays_public(knative_service: Manifest) -> None:
    assert VISIBILITY not in knative_service["metadata"].get("labels", {})
