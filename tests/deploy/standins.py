"""Stand-in `minikube`, `kubectl` and `func` executables for running scripts/cluster-up.sh and
cluster-down.sh on a machine without a cluster. They are NOT the real tools: they record every
call (arguments, and KUBECONFIG) and keep a small JSON model of the cluster, reproducing only the
upstream behaviours the scripts must cope with:

- `minikube image build` packs the context as minikube does (no Dockerfile added back unless -f
  names it) and exits 0 even when the build fails (minikube build_images.go);
- `func deploy` creates a new revision on every call (func adds BUILT=<time>) and writes .func/
  and .gitignore into the function's folder, and warns about pull permissions for dev.local;
- Knative's default-domain Job leaves the domain alone when a catch-all domain exists, keeps
  waiting (polling) while Kourier's LoadBalancer has no IP, and is not rerun when an unchanged
  Job is applied again;
- Kourier's LoadBalancer has an external IP only while `minikube tunnel` runs;
- a route's domain is the lexicographically smallest catch-all key of config-domain;
- `kubectl apply -k` renders with the real `kubectl kustomize` (STANDIN_REAL_KUBECTL) and, as a
  client-side apply does, keeps annotations on the Service that the manifest does not set;
- the API server reports the Kubernetes version the profile was started with.

Usage: python standins.py TOOL ARGS...; STANDIN_STATE names the JSON model, STANDIN_RECORD the
file of recorded calls (one JSON object a line).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

NODE_IP = "192.168.49.2"
KOURIER_NODE_PORT = "31080"
DEFAULT_STATE: dict[str, Any] = {
    "running": False,
    "tunnel_ip": "",
    "images": [],
    "build_fails": False,
    "domain": {"_example": "documentation"},
    "job": None,
    "job_runs": 0,
    "secrets": {},
    "ksvc": None,
    "revisions": 0,
    "applied_images": [],
    "profiles": [],
    "kubernetes_version": "v1.34.0",
}


def load() -> dict[str, Any]:
    path = Path(os.environ["STANDIN_STATE"])
    state = dict(DEFAULT_STATE)
    if path.exists():
        state.update(json.loads(path.read_text()))
    return state


def save(state: dict[str, Any]) -> None:
    Path(os.environ["STANDIN_STATE"]).write_text(json.dumps(state, indent=1))


def record(tool: str, args: list[str]) -> None:
    entry = {"tool": tool, "args": args, "KUBECONFIG": os.environ.get("KUBECONFIG", "")}
    with open(os.environ["STANDIN_RECORD"], "a") as out:
        out.write(json.dumps(entry) + "\n")


def catch_all_domain(state: dict[str, Any]) -> str:
    keys = sorted(key for key in state["domain"] if key != "_example")
    return keys[0] if keys else "svc.cluster.local"


def run_domain_job(state: dict[str, Any]) -> None:
    """What Knative's default-domain Job does once it runs (cmd/default-domain/main.go)."""
    state["job_runs"] += 1
    if state.get("job_fails"):
        state["job"] = "Failed"
    elif catch_all_domain(state) != "svc.cluster.local":
        state["job"] = "Complete"  # a domain exists: it bails out successfully
    elif not state["tunnel_ip"] or state.get("tunnel_lost"):
        # cmd/default-domain polls for the gateway's address until it appears: no condition yet.
        state["job"] = "Running"
    else:
        state["domain"][f"{state['tunnel_ip']}.sslip.io"] = ""
        state["job"] = "Complete"


def minikube(args: list[str], state: dict[str, Any]) -> int:
    if args[:1] == ["-p"]:
        args = args[2:]
    if args[:1] == ["status"]:
        if not state["running"]:
            return 7
        print("Running")
    elif args[:1] == ["start"]:
        state["running"] = True
        state["profiles"].append(args[args.index("-p") + 1])
        state["kubernetes_version"] = args[args.index("--kubernetes-version") + 1]
    elif args[:2] == ["image", "build"]:
        tag = args[args.index("-t") + 1]
        dockerfile = args[args.index("-f") + 1] if "-f" in args else None
        import site

        site.main()  # started with -S for speed; docker-py lives in site-packages
        from tests.deploy.build_context import missing_from_context

        missing = missing_from_context(Path.cwd(), dockerfile)
        if missing:
            print(f"ERROR: failed to solve: {missing[0]}: not found in the build context")
            return 0  # sic: minikube logs the failure and exits 0
        if state["build_fails"]:
            print("ERROR: failed to solve: process did not complete successfully: exit code 1")
            return 0
        state["images"].append(tag)
        print(f"Successfully tagged {tag}")
    elif args[:2] == ["image", "ls"]:
        print("\n".join(["registry.k8s.io/pause:3.10", *state["images"]]))
    elif args[:1] == ["ip"]:
        print(NODE_IP)
    elif args[:1] == ["delete"]:
        state.update(running=False, profiles=[])
    elif args[:2] == ["profile", "list"]:
        valid = [{"Name": name, "Status": "Running"} for name in state["profiles"]]
        print(json.dumps({"invalid": [], "valid": valid}, separators=(",", ":")))
    return 0


def jsonpath_answer(resource: str, query: str, state: dict[str, Any]) -> str:
    if resource == "service/kourier" and "loadBalancer" in query:
        return str(state["tunnel_ip"])
    if resource == "service/kourier" and "nodePort" in query:
        return KOURIER_NODE_PORT
    if resource.startswith("ksvc/") and "status.url" in query:
        return f"http://kv-store.kv-store.{catch_all_domain(state)}"
    raise SystemExit(f"stand-in kubectl: no answer for {resource} {query}")


def kubectl(args: list[str], state: dict[str, Any]) -> int:
    words = list(args)
    flags: dict[str, str] = {}
    for flag in ("--context", "-n", "-o", "-p", "--type", "-f", "-k", "--for", "--timeout"):
        while flag in words:
            at = words.index(flag)
            flags[flag] = words[at + 1]
            del words[at : at + 2]
    for word in list(words):
        if word.startswith("-o=") or word.startswith("--for="):
            flags[word.split("=", 1)[0]] = word.split("=", 1)[1]
    positional = [word for word in words if not word.startswith("-")]
    verb = positional[0] if positional else ""
    rest = positional[1:]
    if verb == "apply" and "-k" in flags:
        real = os.environ["STANDIN_REAL_KUBECTL"]
        rendered = subprocess.run(
            [real, "kustomize", flags["-k"]], capture_output=True, text=True, check=False
        )
        if rendered.returncode != 0:
            sys.stderr.write(rendered.stderr)
            return 1
        images = [
            line.split("image:", 1)[1].strip()
            for line in rendered.stdout.splitlines()
            if line.strip().startswith("image:")
        ]
        state["applied_images"].append(images)
        if "apiVersion: serving.knative.dev/v1\nkind: Service\n" in rendered.stdout:
            state["ksvc"] = state["ksvc"] or {"annotations": {}}
            # Declarative: a new revision only when the revision template changes.
            if state.get("template") != rendered.stdout:
                state["template"] = rendered.stdout
                state["revisions"] += 1
        return 0
    if verb == "apply" and flags.get("-f", "").endswith("serving-default-domain.yaml"):
        if state["job"] is None:  # an unchanged Job is not rerun
            run_domain_job(state)
        print("job.batch/default-domain configured")
        return 0
    if verb in ("apply", "wait", "rollout"):
        return 0
    if verb == "create" and rest[:1] == ["namespace"]:
        print(f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {rest[1]}")
        return 0
    if verb == "create" and rest[:2] == ["secret", "generic"]:
        data = {}
        for word in args:
            if word.startswith("--from-file="):
                key, _, path = word.removeprefix("--from-file=").partition("=")
                data[key] = Path(path).read_text()
            if word.startswith("--from-env-file="):
                for line in Path(word.removeprefix("--from-env-file=")).read_text().splitlines():
                    key, _, value = line.partition("=")
                    data[key] = value
        state["secrets"][rest[2]] = data
        return 0
    if verb == "get" and rest[:1] == ["secret"]:
        if rest[1] not in state["secrets"]:
            print(f'Error from server (NotFound): secrets "{rest[1]}" not found', file=sys.stderr)
            return 1
        query = flags.get("-o", "")
        if query.startswith("jsonpath={.data."):
            # As kubectl: a Secret's data values are base64; a missing key prints nothing.
            value = state["secrets"][rest[1]].get(query.removeprefix("jsonpath={.data.")[:-1])
            print(base64.b64encode(value.encode()).decode() if value is not None else "", end="")
        return 0
    if verb == "get" and rest[:1] == ["configmap"] and rest[1] == "config-domain":
        print("".join(f"{key}\n" for key in sorted(state["domain"])), end="")
        return 0
    if verb == "patch" and rest[:1] == ["configmap/config-domain"]:
        for key, value in json.loads(flags["-p"])["data"].items():
            if value is None:
                state["domain"].pop(key, None)
            else:
                state["domain"][key] = value
        return 0
    if verb == "patch":
        return 0
    if verb == "get" and rest[:1] == ["job"]:
        if state["job"] is None:
            return 0 if "--ignore-not-found" in args else 1
        if "-o" in flags:
            print(f"{state['job']} ", end="")
        return 0
    if verb == "delete" and rest[:1] == ["job"]:
        state["job"] = None
        return 0
    if verb == "logs":
        print("Error finding gateway address: timed out waiting for the condition", file=sys.stderr)
        return 0
    if verb == "get" and rest[:1] == ["ksvc"]:
        if state["ksvc"] is None:
            return 0 if "--ignore-not-found" in args else 1
        template = flags.get("-o", "")
        if template.startswith("go-template="):
            key = template.split('"')[1]
            print(state["ksvc"]["annotations"].get(key, "<no value>"), end="")
        else:
            print(jsonpath_answer("ksvc/kv-store", template, state), end="")
        return 0
    if verb == "annotate":
        if positional[-1].endswith("-") and "=" not in positional[-1]:
            state["ksvc"]["annotations"].pop(positional[-1][:-1], None)  # as kubectl: no error
            return 0
        key, _, value = positional[-1].partition("=")
        state["ksvc"]["annotations"][key] = value
        return 0
    if verb == "version":
        server = state["kubernetes_version"]
        print(json.dumps({"clientVersion": {"gitVersion": "v1.34.0"},
                          "serverVersion": {"gitVersion": server}}, indent=2))  # fmt: skip
        return 0
    if verb == "get" and rest[:2] == ["service", "kourier"]:
        print(jsonpath_answer("service/kourier", flags.get("-o", ""), state), end="")
        return 0
    if verb == "config":
        if rest[:1] == ["view"]:
            print("apiVersion: v1\nkind: Config\ncurrent-context: kv-store")
        return 0
    if verb == "delete":
        return 0
    raise SystemExit(f"stand-in kubectl: unexpected call {args}")


def func(args: list[str], state: dict[str, Any]) -> int:
    assert args[:1] == ["deploy"], args
    folder = Path(args[args.index("--path") + 1])
    # func's side effects on the function's folder (pkg/functions/client.go).
    (folder / ".func").mkdir(exist_ok=True)
    (folder / ".gitignore").write_text("/.func\n")
    print(
        'warning: error while checking pull secrets: Get "https://dev.local/v2/": '
        "dial tcp: lookup dev.local: no such host",
        file=sys.stderr,
    )
    state["ksvc"] = state["ksvc"] or {"annotations": {}}
    state["revisions"] += 1  # BUILT=<time> changes the template on every deploy
    state["applied_images"].append([args[args.index("--image") + 1]])
    return 0


def main() -> int:
    tool, args = sys.argv[1], sys.argv[2:]
    handler = {"minikube": minikube, "kubectl": kubectl, "func": func}[tool]
    if "-" in args and args[args.index("-") - 1] == "-f":
        sys.stdin.read()  # before the lock: the writer of a pipeline may be waiting for it
    # One call at a time: the scripts run some in pipelines.
    with open(os.environ["STANDIN_STATE"] + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record(tool, args)
        state = load()
        code = handler(args, state)
        save(state)
    return code


if __name__ == "__main__":
    sys.exit(main())
