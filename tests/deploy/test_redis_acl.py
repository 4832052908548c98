"""k8s/ and compose give Redis the same least-privilege user as the tests, and the function's
REDIS_URL names it; Redis fsyncs its append-only file before each reply (appendfsync always)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.deploy.manifests import ROOT, Manifest, container, env_secret_refs
from tests.support.local_redis import FUNCTION_ACL_RULES, FUNCTION_USER


def user_directive(args: list[str]) -> list[str]:
    start = args.index("--user")
    end = next((i for i in range(start + 1, len(args)) if args[i].startswith("--")), len(args))
    return args[start + 1 : end]


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_statefulset_creates_the_function_user(redis_statefulset: Manifest) -> None:
    redis_container = container(redis_statefulset)
    args = redis_container["args"]
    assert user_directive(args) == [
        FUNCTION_USER,
        "on",
        ">$(FUNCTION_PASSWORD)",
        *FUNCTION_ACL_RULES,
    ]
    assert env_secret_refs(redis_container)["FUNCTION_PASSWORD"] == (
        "kv-store-redis",
        "function-password",
    )
    assert option(args, "--appendfsync") == "always"


def test_compose_creates_the_function_user_and_connects_as_it() -> None:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    command = compose["services"]["redis"]["command"]
    expected = [FUNCTION_USER, "on", ">${REDIS_FUNCTION_PASSWORD:-}", *FUNCTION_ACL_RULES]
    assert user_directive(command) == expected
    assert option(command, "--appendfsync") == "always"
    url = compose["services"]["function"]["environment"]["REDIS_URL"]
    assert url.startswith(f"redis://{FUNCTION_USER}:${{REDIS_FUNCTION_PASSWORD:-}}@")
    assert compose["services"]["function"]["environment"]["WRITE_TOKEN"] == "${WRITE_TOKEN:-}"


def test_the_function_reads_the_write_token_cluster_up_makes(knative_service: Manifest) -> None:
    # What cluster-up puts in these Secrets: test_cluster_scripts runs it.
    refs = env_secret_refs(container(knative_service))
    assert refs["WRITE_TOKEN"] == ("kv-store-tokens", "write-token")


def test_func_yaml_reads_the_write_token_from_the_same_secret() -> None:
    func = yaml.safe_load(Path(ROOT / "func.yaml").read_text())
    envs = {e["name"]: e["value"] for e in func["run"]["envs"]}
    assert envs["WRITE_TOKEN"] == "{{ secret:kv-store-tokens:write-token }}"
