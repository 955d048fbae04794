"""The rendered objects as ``kn`` commands, for people who deploy with the Knative CLI.

``kn`` covers Brokers, Services, PingSources, SinkBindings and Triggers. What it cannot
express is printed as YAML for ``kubectl apply -f -`` with a comment saying
why: ConfigMaps (spec, JetStream channel template, Kafka config), RBAC
objects, a Broker annotation, a PingSource time zone; a Trigger's
``spec.delivery`` (``kn trigger create`` has no delivery flags) follows its
``kn trigger create`` as a ``kubectl patch``. Flags follow the ``kn``
reference (``kn service create --env/--mount/--scale-min``, ``kn broker create
--class/--broker-config``, ``kn source ping create --schedule/--sink``,
``kn trigger create --broker/--filter/--sink``).

The script can be run again (after a change, or after a failure half-way):
Services use ``kn service create --force`` (replace); PingSources,
SinkBindings and Triggers are updated when ``kn … describe`` finds them
(``kn … update``), created otherwise; a Broker that exists is left alone (its
spec is immutable); ``kubectl apply`` and ``kubectl patch`` are idempotent.
Services get the same ``/health`` readiness probe as the YAML
(``--probe-readiness http::8080:/health``: 8080 is the port Knative gives
the container when none is declared). The objects render does not create —
Secrets, ConfigMaps, ServiceAccounts the user owns, Knative components — are
listed first, as prerequisites.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from knevents.deploy import names, objects, prereqs, render

__all__ = ["commands", "script"]

_KNATIVE_PORT = 8080
"""The container port Knative uses (and sets ``$PORT`` to) when the Service declares none."""
_SCALE_FLAGS = {
    "autoscaling.knative.dev/min-scale": "--scale-min",
    "autoscaling.knative.dev/max-scale": "--scale-max",
}


def _yaml(obj: objects.Obj, why: str) -> str:
    meta = obj["metadata"]
    where = f"{meta['namespace']}/{meta['name']}" if "namespace" in meta else meta["name"]
    body = render.dump_yaml([obj])  # ends with a newline, which a trailing literal block needs
    return f"# {obj['kind']} {where}: {why}\nkubectl apply -f - <<'EOF'\n{body}EOF"


def _join(words: Iterable[str]) -> str:
    return shlex.join(list(words))


def _broker(obj: objects.Obj) -> str:
    meta = obj["metadata"]
    extra = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k != "eventing.knative.dev/broker.class"
    }
    if extra:
        return _yaml(obj, "kn broker create cannot set annotations (" + ", ".join(sorted(extra)) + ")")
    words = ["kn", "broker", "create", meta["name"], "--namespace", meta["namespace"]]
    words += ["--class", meta["annotations"]["eventing.knative.dev/broker.class"]]
    config = (obj.get("spec") or {}).get("config")
    if config:
        words += ["--broker-config", f"cm:{config['name']}:{config.get('namespace', meta['namespace'])}"]
    # a Broker's spec is immutable: one that exists already is the one this script made, keep it
    return f"{_describe('broker', meta)} || {_join(words)}"


def _describe(resource: str, meta: Mapping[str, Any]) -> str:
    words = ["kn", *resource.split(), "describe", meta["name"], "--namespace", meta["namespace"]]
    return _join(words) + " >/dev/null 2>&1"


def _create_or_update(resource: str, meta: Mapping[str, Any], create: list[str], update: list[str]) -> str:
    """Update the object when it exists, create it otherwise (kn has no create-or-update for it)."""
    head = ["kn", *resource.split()]
    name = [meta["name"], "--namespace", meta["namespace"]]
    return (
        f"if {_describe(resource, meta)}; then\n"
        f"  {_join([*head, 'update', *name, *update])}\n"
        f"else\n"
        f"  {_join([*head, 'create', *name, *create])}\n"
        "fi"
    )


def _env_flags(env: Iterable[Mapping[str, Any]]) -> list[str] | None:
    words: list[str] = []
    for item in env:
        if "value" in item:
            words += ["--env", f"{item['name']}={item['value']}"]
            continue
        source = item.get("valueFrom") or {}
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            words += ["--env-value-from", f"{item['name']}=secret:{ref['name']}:{ref['key']}"]
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            words += ["--env-value-from", f"{item['name']}=cm:{ref['name']}:{ref['key']}"]
        else:
            return None
    return words


def _mount_flags(pod: Mapping[str, Any], container: Mapping[str, Any]) -> list[str]:
    volumes = {v["name"]: v for v in pod.get("volumes") or ()}
    words: list[str] = []
    for mount in container.get("volumeMounts") or ():
        volume = volumes[mount["name"]]
        source = (
            f"cm:{volume['configMap']['name']}"
            if "configMap" in volume
            else f"secret:{volume['secret']['secretName']}"
        )
        words += ["--mount", f"{mount['mountPath']}={source}"]
    return words


def _service(obj: objects.Obj) -> str:
    meta = obj["metadata"]
    template = obj["spec"]["template"]
    pod = template["spec"]
    container = pod["containers"][0]
    env = _env_flags(container.get("env") or ())
    if env is None or len(pod.get("imagePullSecrets") or ()) > 1:
        return _yaml(obj, "an env source or several image pull secrets have no kn flag")
    # --force replaces a Service that exists: the script can run again
    words = ["kn", "service", "create", meta["name"], "--force", "--namespace", meta["namespace"]]
    words += ["--image", container["image"]]
    # the UI runs `knevents ui` instead of the image's entrypoint; `--arg=--host`: a value may start with --
    words += [f"--cmd={word}" for word in container.get("command") or ()]
    words += [f"--arg={word}" for word in container.get("args") or ()]
    for key, value in (meta.get("labels") or {}).items():
        if key == objects.VISIBILITY:
            words += ["--cluster-local"] if value == "cluster-local" else []
        else:
            words += ["--label", f"{key}={value}"]
    for key, value in (template["metadata"].get("annotations") or {}).items():
        words += (
            [_SCALE_FLAGS[key], value] if key in _SCALE_FLAGS else ["--annotation-revision", f"{key}={value}"]
        )
    words += env
    for item in container.get("envFrom") or ():
        ref = item.get("secretRef") or item.get("configMapRef") or {}
        words += ["--env-from", ("secret:" if "secretRef" in item else "cm:") + ref["name"]]
    words += _mount_flags(pod, container)
    if pod.get("serviceAccountName"):
        words += ["--service-account", pod["serviceAccountName"]]
    for secret in pod.get("imagePullSecrets") or ():
        words += ["--pull-secret", secret["name"]]
    resources = container.get("resources") or {}
    for flag, key in (("--request", "requests"), ("--limit", "limits")):
        if resources.get(key):
            words += [flag, ",".join(f"{k}={v}" for k, v in resources[key].items())]
    probe = (container.get("readinessProbe") or {}).get("httpGet")
    if probe:
        words += ["--probe-readiness", f"http::{probe.get('port', _KNATIVE_PORT)}:{probe['path']}"]
    words += ["--security-context", "strict"]
    return _join(words)


def _ping(obj: objects.Obj) -> str:
    meta, spec = obj["metadata"], obj["spec"]
    if spec.get("timezone"):
        return _yaml(obj, "kn source ping create has no time zone flag")
    sink = spec["sink"]
    base = "http://" + names.service_host(
        sink["ref"]["name"], sink["ref"].get("namespace", meta["namespace"])
    )
    flags = ["--schedule", spec["schedule"], "--sink", base + sink.get("uri", "")]
    return _create_or_update("source ping", meta, flags, flags)


def _binding(obj: objects.Obj) -> str:
    meta, spec = obj["metadata"], obj["spec"]
    subject, sink = spec["subject"], spec["sink"]["ref"]
    flags = ["--subject", f"{subject['kind']}:{subject['apiVersion']}:{subject['name']}"]
    flags += ["--sink", f"broker:{sink['name']}"]
    return _create_or_update("source binding", meta, flags, flags)


def _trigger(obj: objects.Obj) -> str:
    meta, spec = obj["metadata"], obj["spec"]
    flags: list[str] = []
    for key, value in (spec.get("filter") or {}).get("attributes", {}).items():
        flags += ["--filter", f"{key}={value}"]
    flags += ["--sink", "ksvc:" + spec["subscriber"]["ref"]["name"]]
    # a Trigger's broker cannot change: given on create only
    lines = [_create_or_update("trigger", meta, ["--broker", spec["broker"], *flags], flags)]
    extra = {key: spec[key] for key in ("delivery",) if spec.get(key)}
    if spec["subscriber"].get("uri"):  # a path on the Service (the UI's /cloudevents)
        extra["subscriber"] = spec["subscriber"]
    if extra:
        patch = json.dumps({"spec": extra}, separators=(",", ":"))
        lines.append("# kn trigger create has no delivery flags (retry, backoff, dead-letter sink), "
                     "nor one for a subscriber path:")
        lines.append(
            _join(
                [
                    "kubectl",
                    "patch",
                    "triggers.eventing.knative.dev",
                    meta["name"],
                    "--namespace",
                    meta["namespace"],
                    "--type",
                    "merge",
                    "--patch",
                    patch,
                ]
            )
        )
    return "\n".join(lines)


_BY_KIND: Mapping[str, Callable[[objects.Obj], str]] = {
    "Broker": _broker,
    "Service": _service,
    "PingSource": _ping,
    "SinkBinding": _binding,
    "Trigger": _trigger,
}
_WHY = {
    "ConfigMap": "kn has no ConfigMap command",
    "ServiceAccount": "kn does not manage RBAC",
    "Role": "kn does not manage RBAC",
    "RoleBinding": "kn does not manage RBAC",
    "ClusterRole": "kn does not manage RBAC",
    "ClusterRoleBinding": "kn does not manage RBAC",
}


def commands(objs: Iterable[objects.Obj]) -> list[str]:
    """One shell snippet per object, in apply order."""
    out = []
    for obj in objs:
        builder = _BY_KIND.get(obj["kind"]) if obj["apiVersion"] != "v1" else None
        out.append(builder(obj) if builder else _yaml(obj, _WHY.get(obj["kind"], "kn cannot create it")))
    return out


def prerequisites(rendering: render.Rendering) -> str:
    """Comment lines naming what must exist before the script runs."""
    lines = ["# Prerequisites (not created by this script):", "# - Knative Serving and Knative Eventing"]
    lines += [f"# - {component}" for component in prereqs.components(rendering.objects)]
    lines += [f"# - {p}" for p in rendering.prerequisites]
    return "\n".join(lines) + "\n"


def script(rendering: render.Rendering) -> str:
    """The whole rendering as a shell script that can be run again."""
    head = "#!/bin/sh\n# Generated by `knevents render --format kn`; safe to run again.\n"
    return head + prerequisites(rendering) + "set -e\n\n" + "\n\n".join(commands(rendering.objects)) + "\n"
