"""Both entry points fuzzed with schemathesis against openapi.yaml: generated and fixed examples,
derandomized (the same cases on every run), a fixed number per operation. No answer may be a 5xx,
and every answer must conform to the document: a listed status, its content type, its headers
and its body schema."""

from __future__ import annotations

import uuid

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from scripts.serve import ROOT
from tests.conftest import RunningFunction

EXAMPLES_PER_OPERATION = 25
schema = schemathesis.openapi.from_path(ROOT / "openapi.yaml")

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_conforms(case: schemathesis.Case, function: RunningFunction) -> None:
    case.call_and_validate(base_url=function.url, checks=CHECKS, timeout=10)


def test_etag_is_sent(function: RunningFunction) -> None:
    with httpx.Client(base_url=function.url, timeout=10) as http:
        path = f"/fuzz/{uuid.uuid4().hex}"
        assert "etag" in http.put(path, json={"a": 1}).headers
        assert "etag" in http.get(path).headers
