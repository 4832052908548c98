"""The local cluster's pins and overrides, checked without building anything."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from localcluster import layout

GO_MOD_REQUIRE = re.compile(r"^\s*(?:require\s+)?(\S+)\s+(v\S+)", re.MULTILINE)


def go_mod(name: str) -> str:
    return (layout.GOMOD / name / "go.mod").read_text()


def test_every_pin_has_a_wrapper_module_requiring_that_exact_version() -> None:
    for name, pin in layout.pins().items():
        required = dict(GO_MOD_REQUIRE.findall(go_mod(name)))
        assert required.get(pin.module) == pin.version, (
            f"gomod/{name}/go.mod and versions.toml disagree"
        )
        assert (layout.GOMOD / name / "go.sum").stat().st_size > 0


def test_every_program_is_a_tool_of_its_wrapper_module() -> None:
    for name, pin in layout.pins().items():
        text = go_mod(name)
        for package in pin.programs().values():
            assert re.search(rf"^\s*(tool\s+)?{re.escape(package)}$", text, re.MULTILINE), (
                f"{package} is not a tool of gomod/{name}"
            )


def test_kubernetes_staging_modules_are_replaced_by_their_published_versions() -> None:
    version = layout.pins()["kubernetes"].version
    staging = "v0." + version.split(".", 1)[1]
    replaces = re.findall(
        r"^\s*(k8s\.io/\S+) => (k8s\.io/\S+) (\S+)$", go_mod("kubernetes"), re.MULTILINE
    )
    assert len(replaces) > 20
    assert all(old == new and pinned == staging for old, new, pinned in replaces)


def test_no_upstream_go_source_is_in_the_repository() -> None:
    """The only Go source is the stand-in for func's unpublished operator API, written here."""
    sources = sorted(p.relative_to(layout.PACKAGE) for p in layout.GOMOD.rglob("*.go"))
    assert sources == [Path("gomod/func/operatorapi/api/v1alpha1/function.go")]


def test_coredns_answers_cluster_local_only_and_forwards_nothing() -> None:
    docs = list(yaml.safe_load_all((layout.MANIFESTS / "coredns.yaml").read_text()))
    corefile = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["Corefile"]
    zones = re.findall(r"^(\S[^{]*)\{", corefile, re.MULTILINE)
    assert [zone.strip() for zone in zones] == ["cluster.local:53"]
    assert "forward" not in corefile and "proxy" not in corefile


def test_traefik_publishes_both_services_knative_needs() -> None:
    docs = list(yaml.safe_load_all((layout.MANIFESTS / "traefik.yaml").read_text()))
    args = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"][
        "containers"
    ][0]["args"]
    services = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    named = {
        a.split("=", 1)[1]
        for a in args
        if a.startswith("--providers.knative.") and "Service.name" in a
    }
    assert "--experimental.knative=true" in args
    assert named == services == {"traefik", "traefik-private"}


def test_knative_is_told_to_use_traefik_and_a_reserved_domain() -> None:
    docs = {
        d["metadata"]["name"]: d["data"]
        for d in yaml.safe_load_all((layout.MANIFESTS / "knative-config.yaml").read_text())
    }
    assert docs["config-network"]["ingress-class"] == "traefik.ingress.networking.knative.dev"
    assert list(docs["config-domain"]) == [layout.DOMAIN]
    assert layout.DOMAIN.endswith(".test")  # RFC 2606: never a public name


def test_every_cluster_address_is_private_and_outside_the_hosts_usual_ranges() -> None:
    import ipaddress

    for cidr in (layout.POD_CIDR, layout.SERVICE_CIDR, f"{layout.NODE_IP}/{layout.VETH_PREFIX}"):
        assert ipaddress.ip_network(cidr, strict=False).is_private
    assert ipaddress.ip_address(layout.CLUSTER_DNS) in ipaddress.ip_network(layout.SERVICE_CIDR)
