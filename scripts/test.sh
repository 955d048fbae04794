#!/usr/bin/env bash
# The project's test command (the README's second command): lint, types, layering, tests.
# Services the tests need (nats-server, moto_server, the Pub/Sub emulator) are started by pytest fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ] && [ -z "${VIRTUAL_ENV:-}" ]; then . .venv/bin/activate; fi
echo "== ruff";         ruff check .
echo "== mypy";         mypy
echo "== import-linter"; lint-imports
echo "== pytest";       python -m pytest -q -n 2 --dist loadfile "$@"
