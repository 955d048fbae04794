"""Run ``terraform`` offline in a scratch copy of the repo's modules, with the AWS provider mirror.

The AWS provider is preinstalled in a filesystem mirror on these machines; a
CLI config with a ``filesystem_mirror`` (and no network installation) lets
``terraform init`` work offline. The mirror is looked up in
``$KNEVENTS_TF_PROVIDER_MIRROR``, then in the known locations; when it is not
there the test fails and says what to install where.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.deploy import corpus

TERRAFORM_DIR = corpus.REPO / "terraform"
_MIRRORS = (
    "/opt/tf-plugins",
    "/usr/share/terraform/plugins",
    "~/.terraform.d/plugins",
    "~/.local/share/terraform/plugins",
)
AWS = "registry.terraform.io/hashicorp/aws"


def provider_mirror() -> Path:
    """The filesystem mirror holding the AWS provider; AssertionError with a clear message when absent."""
    candidates = [os.environ.get("KNEVENTS_TF_PROVIDER_MIRROR", ""), *_MIRRORS]
    for raw in candidates:
        if raw and (Path(raw).expanduser() / AWS).is_dir():
            return Path(raw).expanduser()
    raise AssertionError(
        "no Terraform provider mirror with hashicorp/aws found (looked in $KNEVENTS_TF_PROVIDER_MIRROR and "
        f"{', '.join(_MIRRORS)}); install terraform-provider-aws into <mirror>/{AWS}/<version>/linux_amd64/"
    )


def cli_config(tmp: Path) -> Path:
    """A CLI config that installs providers from the mirror only (never from the network)."""
    path = tmp / "terraform.rc"
    path.write_text(
        f'provider_installation {{\n  filesystem_mirror {{\n    path = "{provider_mirror()}"\n  }}\n}}\n'
    )
    return path


def scratch(tmp: Path, *extra: Path) -> Path:
    """Copy terraform/ (and extra dirs, keeping their repo-relative place) under ``tmp``; returns the copy's root."""
    root = tmp / "repo"
    shutil.copytree(
        TERRAFORM_DIR, root / "terraform", ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*")
    )
    for directory in extra:
        shutil.copytree(directory, root / directory.relative_to(corpus.REPO))
    return root


def terraform(cwd: Path, *args: str, config: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run terraform in ``cwd``; AssertionError with its output when it fails."""
    env = {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(config),
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",
        "NO_COLOR": "1",
    }
    done = subprocess.run(
        ["terraform", *args, "-no-color"] if args[0] != "fmt" else ["terraform", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"terraform {' '.join(args)} in {cwd} failed:\n{done.stdout}\n{done.stderr}"
    return done
