"""``knevents hooks apply|delete PATH...``: manage the provider webhooks the EventSources describe.

``apply`` creates (or updates) the hooks of every github, gitlab, bitbucket,
bitbucketserver, gerrit and stripe entry that carries credentials, pointing at
``--url`` + the entry's ``webhook.endpoint`` (default: the entry's own
``webhook.url``); a second ``apply`` changes nothing. ``delete`` removes the
hooks pointing at that URL. ``--dry-run`` prints every call, secrets masked,
and sends none. Exit codes: 0 done, 1 a provider refused (the message names
the provider and repository, never a token), 2 usage or manifest error.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    """Register ``hooks``."""
    parser = subparsers.add_parser(
        "hooks", help="create or delete the provider webhooks of EventSources (GitHub, GitLab, Bitbucket, …)",
        description="Create, update or delete the webhooks the EventSources in PATH describe, on each provider.")
    parser.add_argument("action", choices=("apply", "delete"))
    parser.add_argument("paths", nargs="+", metavar="PATH", help="manifest files or directories")
    parser.add_argument("--url", default=None,
                        help="public base URL of the event source (default: each entry's webhook.url)")
    parser.add_argument("--dry-run", action="store_true", help="print the calls (secrets masked), send nothing")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Apply or delete every hook; one line per repository/project."""
    from knevents import errors, hooks, validation
    from knevents.hooks import base
    from knevents.secrets import SecretResolver
    from knevents.settings import Settings

    try:
        manifests = validation.load_paths(args.paths)
        found = list(hooks.targets(list(manifests.event_sources), args.url))
    except (OSError, errors.KneventsError) as exc:
        print(f"knevents hooks: {exc}", file=sys.stderr)
        return 2
    if not found:
        print("knevents hooks: no github, gitlab, bitbucket, bitbucketserver, gerrit or stripe entry asks for a hook")
        return 0
    ctx = base.Context(SecretResolver(Settings.from_env().secrets), dry_run=args.dry_run,
                       api_bases=hooks.api_bases())
    act = hooks.apply if args.action == "apply" else hooks.delete
    failed = 0
    for target in found:
        try:
            for outcome in act(target, ctx):
                print(f"{target.event_source}/{target.event_name}: {outcome.line()}")
        except errors.KneventsError as exc:
            failed += 1
            print(f"knevents hooks: {target.event_source}/{target.event_name}: {exc}", file=sys.stderr)
    return 1 if failed else 0
