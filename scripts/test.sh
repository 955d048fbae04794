#!/usr/bin/env bash
# The project's test command (the README's second command): lint, types, layering, tests.
# Servers the tests need are installed by scripts/test-deps.sh (Debian packages, Azurite from npm) and
# started by pytest fixtures (nats-server, moto_server, the Pub/Sub emulator, Tansu, RabbitMQ, mosquitto, redis …).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ] && [ -z "${VIRTUAL_ENV:-}" ]; then . .venv/bin/activate; fi
if [ -z "${KNEVENTS_SKIP_TEST_DEPS:-}" ]; then bash scripts/test-deps.sh; fi
echo "== ruff";         ruff check .
echo "== mypy";         mypy
echo "== import-linter"; lint-imports
echo "== pytest";       python -m pytest -q -n 2 --dist loadfile "$@"
