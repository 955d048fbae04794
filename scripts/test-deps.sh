#!/usr/bin/env bash
# Installs the servers the tests start (the fixtures start them; this only puts them on the machine):
# Debian's rabbitmq-server, mosquitto, redis-server, openssh-server, chromium and git, and Azurite from npm
# (into tests/.node, not globally). Idempotent: what is already there is not installed again.
# Called by scripts/test.sh; set KNEVENTS_SKIP_TEST_DEPS=1 to skip it when you manage these yourself.
set -euo pipefail
cd "$(dirname "$0")/.."

want=()
command -v redis-server >/dev/null || want+=(redis-server)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || want+=(mosquitto)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || [ -d /usr/lib/rabbitmq ] || want+=(rabbitmq-server)
[ -x /usr/sbin/sshd ] || want+=(openssh-server)
[ -x /usr/bin/chromium ] || want+=(chromium)
command -v git >/dev/null || want+=(git)  # source.git tests: the CLI and its http-backend
if [ ${#want[@]} -gt 0 ]; then
  echo "== installing Debian packages the tests need: ${want[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # --no-install-recommends keeps chromium's and rabbitmq's optional extras out; services are not started
  # by us (policy-rc.d may still start them: the fixtures use their own ports, so a system instance is harmless).
  $SUDO apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
fi

if [ ! -x tests/.node/node_modules/.bin/azurite-queue ]; then
  echo "== installing Azurite (npm) into tests/.node"
  mkdir -p tests/.node
  (cd tests/.node && [ -f package.json ] || echo '{"private": true}' > package.json)
  (cd tests/.node && npm install --silent --no-audit --no-fund azurite@3 >/dev/null)
fi
