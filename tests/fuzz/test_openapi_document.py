"""openapi.yaml is a valid OpenAPI 3.1 document and says what docs/http-api.md and
docs/configuration.md say: the same error codes with the same statuses, the same paths, the same
token settings."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate

from scripts.serve import ROOT

# The contract's prose and its settings: the two documents beside openapi.yaml.
README = "".join((ROOT / "docs" / name).read_text() for name in ("http-api.md", "configuration.md"))
ERROR_ROW = re.compile(r"^\| (\d{3}) \| `([a-z_]+)` \|", re.MULTILINE)
# Contract changes whose README rows are written with their code: codes the document already has
# and the README not yet, and README rows the contract drops (ttl/last_updated are now ignored).


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    return loaded


def error_codes_by_status(document: dict[str, Any]) -> dict[int, set[str]]:
    """Every status of every operation with the error codes its body may carry."""
    found: dict[int, set[str]] = {}

    for path_item in document["paths"].values():
        if "$ref" in path_item:
            path_item = lookup(document, path_item["$ref"])
        for method, operation in path_item.items():
            if method == "parameters":
                continue
            for status, response in operation["responses"].items():
                response = lookup(document, response["$ref"]) if "$ref" in response else response
                codes = found.setdefault(int(status), set())
                for media in response.get("content", {}).values():
                    codes |= codes_in(document, media["schema"])
    return found


def lookup(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def codes_in(document: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    error = schema.get("properties", {}).get("error")
    if error is None:
        return set()
    if "const" in error:
        return {error["const"]}
    return set(error.get("enum", []))


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_error_codes_and_statuses_match_the_readme(document: dict[str, Any]) -> None:
    readme_rows = {(int(status), code) for status, code in ERROR_ROW.findall(README)}
    assert len(readme_rows) >= 10, "the README's error table was not found"
    by_status = error_codes_by_status(document)
    documented = {(status, code) for status, codes in by_status.items() for code in codes}
    all_codes = set(document["components"]["schemas"]["Error"]["properties"]["error"]["enum"])

    readme_codes = {code for _, code in readme_rows}
    assert readme_codes == all_codes
    missing = readme_rows - documented
    assert not missing, f"README rows the document has no response for: {sorted(missing)}"
    assert {code for _, code in documented} == all_codes, "an error code no response carries"


def test_paths_and_settings_match_the_readme(document: dict[str, Any]) -> None:
    assert set(document["paths"]) == {"/", "/health/liveness", "/health/readiness", "/{path}"}
    for path in ("/health/liveness", "/health/readiness"):
        assert f"`GET {path}`" in README or f"`{path}`" in README
    for setting in ("WRITE_TOKEN", "READ_TOKEN", "MAX_PATH_BYTES", "MAX_BODY_BYTES"):
        assert f"`{setting}`" in README, setting
        assert setting in (ROOT / "openapi.yaml").read_text(), setting
    for header in ("Retry-After", "WWW-Authenticate", "Allow", "Location"):
        assert header in README, header
    assert "ETag" in README
    assert "ETag" in str(document["components"]["headers"])
