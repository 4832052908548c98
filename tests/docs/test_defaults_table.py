"""The documented defaults agree with the code: the generated table is current, the settings table
states each setting's default, and every document a row names states the value in its words."""

from __future__ import annotations

import shutil
from dataclasses import Field, fields
from pathlib import Path
from typing import Any

import pytest

from function.settings import Settings
from scripts import defaults_table
from scripts.serve import ROOT
from tests.deploy.manifests import KNATIVE_API_VERSION, Manifest, render_kustomization, the_one


def test_the_generated_table_is_current() -> None:
    text = defaults_table.DOCUMENT.read_text()
    assert defaults_table.replaced(text) == text, "run python -m scripts.defaults_table"
    assert defaults_table.main(["--check"]) == 0


def test_a_stale_table_is_caught() -> None:
    text = defaults_table.DOCUMENT.read_text()
    stale = text.replace("| MAX_BODY_BYTES | `1048576` |", "| MAX_BODY_BYTES | `1048577` |")
    assert stale != text
    assert defaults_table.replaced(stale) == text


def _settings_table() -> dict[str, str]:
    """Each variable of the settings table with the default it states, as written."""
    stated = {}
    for row in defaults_table.DOCUMENT.read_text().splitlines():
        if not row.startswith("| `"):
            continue
        cells = row.split("|")
        names = [name.strip("` ") for name in cells[1].split(",")]
        values = [value.strip() for value in cells[2].split(",")]
        if len(values) != len(names):
            values = [cells[2].strip()] * len(names)
        stated.update(zip(names, values, strict=True))
    return stated


def _same(stated: str, value: object) -> bool:
    if isinstance(value, bool):
        return stated == ("on" if value else "off")
    if value == "":
        return stated == "empty"
    if isinstance(value, int | float):
        return float(stated.strip("`")) == value
    return stated == f"`{value}`"


@pytest.mark.parametrize("field", fields(Settings), ids=lambda field: field.name.upper())
def test_the_settings_table_states_the_code_s_default(field: Field[Any]) -> None:
    name, default = field.name.upper(), field.default
    stated = _settings_table()[name]
    assert _same(stated, default), f"{name}: the docs say {stated}, the code {default!r}"


@pytest.mark.parametrize("default", defaults_table.defaults(), ids=lambda default: default.name)
def test_each_document_states_the_value_in_its_words(default: defaults_table.Default) -> None:
    for document, phrase in default.phrases.items():
        assert phrase in (ROOT / document).read_text(), f"{document} lacks {phrase!r}"


def test_a_changed_value_no_longer_matches_the_words() -> None:
    assert not _same("`1048576`", 1_048_577)
    assert not _same("`1.0`", 2.0)
    assert not _same("off", True)
    assert not _same("`kv:`", "kv")


def _knative_service(directory: Path) -> Manifest:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: it renders the kustomizations (kubectl kustomize)")
    return the_one(render_kustomization(directory), KNATIVE_API_VERSION, "Service")


@pytest.mark.parametrize(
    "directory", ["k8s", *sorted(str(path.parent.relative_to(ROOT))
                                 for path in (ROOT / "overlays").glob("*/kustomization.yaml"))]
)  # fmt: skip
def test_every_deployment_gets_the_table_s_knative_settings(directory: str) -> None:
    written = defaults_table.knative_values(
        defaults_table.read_manifest(defaults_table.KNATIVE_SERVICE)
    )
    assert defaults_table.knative_values(_knative_service(ROOT / directory)) == written


def test_a_func_yaml_that_differs_from_k8s_is_refused() -> None:
    service = defaults_table.read_manifest(defaults_table.KNATIVE_SERVICE)
    func = defaults_table.read_manifest(defaults_table.FUNC_YAML)
    assert defaults_table.knative_defaults(service, func)  # they agree as committed
    func["deploy"]["options"]["scale"]["max"] += 1
    with pytest.raises(defaults_table.ManifestsDisagree, match="max-scale"):
        defaults_table.knative_defaults(service, func)
    func = defaults_table.read_manifest(defaults_table.FUNC_YAML)
    func["deploy"]["options"]["resources"]["limits"]["memory"] = "512Mi"
    with pytest.raises(defaults_table.ManifestsDisagree, match="limits memory"):
        defaults_table.knative_defaults(service, func)


def test_a_document_stating_another_knative_value_is_caught() -> None:
    service = defaults_table.read_manifest(defaults_table.KNATIVE_SERVICE)
    service["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/max-scale"] = (
        "11"
    )
    func = defaults_table.read_manifest(defaults_table.FUNC_YAML)
    func["deploy"]["options"]["scale"]["max"] = 11
    (max_scale,) = [row for row in defaults_table.knative_defaults(service, func)
                    if row.name == "max-scale"]  # fmt: skip
    text = (ROOT / defaults_table.AUTOSCALING).read_text()
    assert max_scale.phrases[defaults_table.AUTOSCALING] not in text
