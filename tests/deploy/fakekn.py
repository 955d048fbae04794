"""A recording fake ``kn`` and ``kubectl`` (tests only): run a generated deploy script without a cluster.

No Knative cluster can run here, so the ``--format kn`` script runs against two small executables put first
on ``PATH``. They record every call and keep the cluster's state in a JSON file, with the behaviour of the
real commands that decides whether a script can be run twice:

* ``kn R create NAME`` fails (exit 1, "already exists") when NAME exists, unless ``--force`` (``kn service
  create --force`` replaces it); ``kn R update NAME`` fails when it does not exist and changes only the flags
  it is given; ``kn R describe NAME`` exits 0 when NAME exists, 1 otherwise.
* ``kubectl apply -f -`` creates or replaces each object read on stdin; ``kubectl patch`` merges the patch
  into an existing object and fails on a missing one.

The state keeps, per object, the flags (kn) or the object (kubectl), so two runs can be compared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["FakeCluster"]

_BOOLEAN_FLAGS = {"--force", "--cluster-local"}

_KN = r"""
import json, os, sys
args = sys.argv[1:]
state_path, log_path = os.environ["FAKEKN_STATE"], os.environ["FAKEKN_LOG"]
with open(log_path, "a") as log:
    log.write(json.dumps(["kn", *args]) + "\n")
state = json.load(open(state_path)) if os.path.exists(state_path) else {}
verbs = ("create", "update", "describe", "delete")
at = next(i for i, w in enumerate(args) if w in verbs)
resource, verb, name, rest = " ".join(args[:at]), args[at], args[at + 1], args[at + 2:]
flags, i = [], 0
while i < len(rest):
    if rest[i] in BOOLEAN:
        flags.append([rest[i], True]); i += 1
    else:
        flags.append([rest[i], rest[i + 1]]); i += 2
namespace = next((v for f, v in flags if f in ("--namespace", "-n")), "default")
key = f"{resource} {namespace}/{name}"
exists = key in state
force = any(f == "--force" for f, _ in flags)
flags = [p for p in flags if p[0] != "--force"]
if verb == "describe":
    sys.exit(0 if exists else 1)
if verb == "create":
    if exists and not force:
        print(f"Error: {resource} '{name}' already exists in namespace '{namespace}'", file=sys.stderr)
        sys.exit(1)
    state[key] = sorted(flags)
elif verb == "update":
    if not exists:
        print(f"Error: {resource} '{name}' not found", file=sys.stderr)
        sys.exit(1)
    given = {f for f, _ in flags}
    state[key] = sorted([p for p in state[key] if p[0] not in given] + flags)
elif verb == "delete":
    state.pop(key, None)
json.dump(state, open(state_path, "w"), sort_keys=True)
"""

_KUBECTL = r"""
import json, os, sys
import yaml
args = sys.argv[1:]
state_path, log_path = os.environ["FAKEKN_STATE"], os.environ["FAKEKN_LOG"]
stdin = sys.stdin.read() if "-f" in args else ""
with open(log_path, "a") as log:
    log.write(json.dumps(["kubectl", *args, stdin]) + "\n")
state = json.load(open(state_path)) if os.path.exists(state_path) else {}
def merge(base, patch):
    for k, v in patch.items():
        base[k] = merge(base.get(k) or {}, v) if isinstance(v, dict) else v
    return base
if args[0] == "apply":
    for obj in yaml.safe_load_all(stdin):
        if obj:
            meta = obj["metadata"]
            state[f"{obj['kind']} {meta.get('namespace', '')}/{meta['name']}"] = obj
elif args[0] == "patch":
    resource, name = args[1], args[2]
    namespace = args[args.index("--namespace") + 1]
    kind = {"triggers.eventing.knative.dev": "trigger"}[resource]
    key = f"{kind} {namespace}/{name}"
    if key not in state:
        print(f"Error from server (NotFound): {resource} \"{name}\" not found", file=sys.stderr)
        sys.exit(1)
    patches = state.setdefault("patches", {})
    patches[key] = merge(patches.get(key, {}), json.loads(args[args.index("--patch") + 1]))
json.dump(state, open(state_path, "w"), sort_keys=True)
"""


class FakeCluster:
    """The fake ``kn``/``kubectl`` in ``directory``: run scripts against it, read its state and call log."""

    def __init__(self, directory: Path) -> None:
        self.bin = directory / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.state_file = directory / "state.json"
        self.log_file = directory / "calls.jsonl"
        for name, body in (("kn", _KN.replace("BOOLEAN", repr(_BOOLEAN_FLAGS))), ("kubectl", _KUBECTL)):
            path = self.bin / name
            path.write_text(f"#!{sys.executable}\n{body}")
            path.chmod(0o755)

    def run(self, script: str) -> subprocess.CompletedProcess[str]:
        """Run a shell script with the fakes first on PATH."""
        env = {
            **os.environ,
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "FAKEKN_STATE": str(self.state_file),
            "FAKEKN_LOG": str(self.log_file),
        }
        return subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=120)

    def state(self) -> dict[str, Any]:
        """The cluster's objects: ``"resource namespace/name" -> flags or object``."""
        loaded: dict[str, Any] = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        return loaded

    def calls(self) -> list[list[str]]:
        """Every call made so far, in order (kubectl calls end with what was read on stdin)."""
        if not self.log_file.exists():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines()]
