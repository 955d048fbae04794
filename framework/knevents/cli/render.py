"""``knevents render``: Argo manifests → Knative manifests (YAML) or ``kn`` commands.

Reads the same files ``knevents validate`` does; an invalid manifest is
reported with every problem and exit code 1, never a traceback. Warnings
(parts of a manifest that have no Knative equivalent, permissions that could
not be derived) go to stderr; the manifests or commands go to stdout, or to
one file per EventSource / Sensor / Broker under ``-o DIR``. With ``--check``
the objects are first checked offline as a cluster would (:mod:`knevents.deploy.check`);
any finding is printed and nothing is written (exit code 2). ``--ui`` adds the web UI
(:mod:`knevents.deploy.ui`), read-only unless ``--ui-allow-actions``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    """Register ``render`` on the top-level parser."""
    from knevents.deploy import options

    parser = subparsers.add_parser(
        "render",
        help="render Knative manifests (or kn commands) from Argo EventSources, Sensors and EventBuses",
        description="Render Knative Services, Brokers, Triggers, PingSources and RBAC from Argo Events manifests.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="manifest files or directories")
    parser.add_argument(
        "-n", "--namespace", help="namespace for every object (default: each manifest's, else default)"
    )
    parser.add_argument(
        "--image", default=options.DEFAULT_IMAGE, help="knevents function image (default: %(default)s)"
    )
    parser.add_argument(
        "--format", choices=("yaml", "kn"), default="yaml", help="output format (default: yaml)"
    )
    parser.add_argument(
        "-o", "--output-dir", type=Path, help="write one file per manifest here instead of stdout"
    )
    parser.add_argument(
        "--nats-url",
        default=options.DEFAULT_NATS_URL,
        help="NATS URL for sensor state (default: %(default)s)",
    )
    parser.add_argument(
        "--nats-credentials-secret",
        metavar="SECRET",
        help="a Secret whose key nats.creds is a NATS credentials file (JWT + nkey seed), mounted into every "
             "function that connects to NATS",
    )
    parser.add_argument(
        "--dead-letter-sink",
        help="default dead-letter sink for sensor Triggers (URI or Knative Service name)",
    )
    parser.add_argument(
        "--retry", type=int, default=5, help="broker redeliveries to a sensor (default: %(default)s)"
    )
    parser.add_argument(
        "--backoff-delay", default="PT0.2S", help="first redelivery delay, ISO-8601 (default: %(default)s)"
    )
    parser.add_argument(
        "--ui",
        action="store_true",
        help="also deploy the web UI (Knative Service knevents-ui, read-only) against the same NATS",
    )
    parser.add_argument(
        "--ui-allow-actions",
        action="store_true",
        help="with --ui: let the page replay and discard dead letters and replay archived events",
    )
    parser.add_argument(
        "--ui-token-secret",
        default="knevents-ui",
        metavar="SECRET",
        help="with --ui: the Secret whose key 'token' is the UI's bearer token (default: %(default)s)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="check the output against Knative's CRD schemas, Kubernetes' schemas and Knative's admission "
        "rules before printing it; exit code 2 when a cluster would refuse something",
    )
    parser.add_argument(
        "--kube-version",
        default="1.30",
        help="Kubernetes version the core and RBAC objects are checked against (default: %(default)s)",
    )
    parser.add_argument(
        "--crds",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="check against the CRD YAML in DIR instead of the Knative schemas knevents ships (repeatable)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Render and print; 0 on success, 1 when the input is invalid, 2 when ``--check`` finds problems."""
    from knevents import errors
    from knevents.deploy import kn, options, render

    opts = options.RenderOptions(
        namespace=args.namespace,
        image=args.image,
        nats_url=args.nats_url,
        nats_credentials_secret=args.nats_credentials_secret,
        dead_letter_sink=args.dead_letter_sink,
        retry=args.retry,
        backoff_delay=args.backoff_delay,
        ui=args.ui,
        ui_allow_actions=args.ui_allow_actions,
        ui_token_secret=args.ui_token_secret,
    )
    if (args.ui_allow_actions or args.ui_token_secret != "knevents-ui") and not args.ui:
        print("knevents render: --ui-allow-actions and --ui-token-secret go with --ui", file=sys.stderr)
        return 1
    try:
        rendering = render.render_paths(args.paths, opts)
    except errors.SpecError as exc:
        print(f"knevents render: {exc}", file=sys.stderr)
        return 1
    except (OSError, errors.KneventsError) as exc:
        print(f"knevents render: {exc}", file=sys.stderr)
        return 1
    for warning in rendering.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.check and not _check(rendering, args):
        return 2
    if args.output_dir is not None:
        if args.format == "kn":
            args.output_dir.mkdir(parents=True, exist_ok=True)
            path = args.output_dir / "deploy.sh"
            path.write_text(kn.script(rendering))
            print(path)
        else:
            for path in render.write_dir(rendering, args.output_dir):
                print(path)
        return 0
    sys.stdout.write(kn.script(rendering) if args.format == "kn" else render.dump_yaml(rendering.objects))
    return 0


def _check(rendering: Any, args: argparse.Namespace) -> bool:
    """Print every finding of ``knevents.deploy.check`` to stderr; True when there is none."""
    try:
        from knevents.deploy import check

        findings = check.check(
            rendering.objects, schemas=check.knative_schemas(args.crds), kube_version=args.kube_version
        )
    except ImportError as exc:  # jsonschema is in knevents[check]
        print(f"knevents render: --check needs knevents[check] ({exc})", file=sys.stderr)
        return False
    for finding in findings:
        print(f"check: {finding}", file=sys.stderr)
    if findings:
        print(f"knevents render: --check found {len(findings)} problem(s); nothing printed", file=sys.stderr)
    return not findings
