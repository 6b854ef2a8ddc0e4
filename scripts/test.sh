#!/usr/bin/env bash
# Runs the whole test suite from a clean clone and prints one closing line: "N passed, M failed".
# Installs what the tests need and the machine lacks (Debian packages: redis-server and nginx
# for the multi-process cluster tests, Node.js and npm for tests/clients, chromium for the chat
# page's browser test: Debian's own build, driven by playwright-core; ~80 s to install here).
set -uo pipefail
cd "$(dirname "$0")/.."

sudo=""
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1; then sudo="sudo"; fi
apt_updated=0
apt_install() { # package…
  if [[ $apt_updated -eq 0 ]]; then $sudo apt-get update -q; apt_updated=1; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v curl >/dev/null 2>&1 || missing+=(curl)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
if ((${#missing[@]})); then apt_install "${missing[@]}"; fi

results="${TEST_RESULTS_DIR:-$PWD/TestResults}"
rm -rf "$results"
mkdir -p "$results"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

dotnet build Broker.sln -c Release -warnaserror --nologo -v quiet
build=$?
if [[ $build -ne 0 ]]; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit $build
fi

dotnet test Broker.sln -c Release --no-build --nologo \
  --logger "trx" --logger "console;verbosity=normal" \
  --results-directory "$results" \
  --blame-hang-timeout 5m
status=$?

passed=0
failed=0
shopt -s nullglob
for trx in "$results"/*.trx; do
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")
  f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
done

if [[ $status -ne 0 && $failed -eq 0 ]]; then
  # The runner failed without a failed test (a crash or a hang): count it as one failure.
  failed=1
fi

# Node.js `ws` client against the Release build of the front-end as a real process
# (tests/clients): Node's built-in test runner, TAP summary lines added to the totals.
node_status=0
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm
fi
if ! (cd tests/clients && npm ci --no-audit --no-fund); then
  echo "npm ci failed in tests/clients"
  node_status=1
  failed=$((failed + 1))
else
  tap="$results/clients.tap"
  timeout --kill-after=30s 15m node --test --test-reporter=tap tests/clients/*.test.mjs | tee "$tap"
  node_status=${PIPESTATUS[0]}
  np=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" | tail -n 1)
  nf=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" | tail -n 1)
  if [[ $node_status -ne 0 && ${nf:-0} -eq 0 ]]; then
    # The node runner failed without a failed test (a crash, a hang, no node): one failure.
    nf=1
  fi
  passed=$((passed + ${np:-0}))
  failed=$((failed + ${nf:-0}))
fi

# The JavaScript client (clients/js) against real front-end, silo and redis-server processes of
# the same Release build: node --test, TAP summary lines added to the totals.
js_status=0
if ! (cd clients/js && npm ci --no-audit --no-fund); then
  echo "npm ci failed in clients/js"
  js_status=1
  failed=$((failed + 1))
else
  tap="$results/client-js.tap"
  timeout --kill-after=30s 15m node --test --test-reporter=tap clients/js/test/*.test.mjs | tee "$tap"
  js_status=${PIPESTATUS[0]}
  np=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" | tail -n 1)
  nf=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" | tail -n 1)
  if [[ $js_status -ne 0 && ${nf:-0} -eq 0 ]]; then
    nf=1
  fi
  passed=$((passed + ${np:-0}))
  failed=$((failed + ${nf:-0}))
fi

echo "${passed} passed, ${failed} failed"
if [[ $status -ne 0 ]]; then
  exit $status
fi
if [[ $node_status -ne 0 ]]; then
  exit $node_status
fi
exit $js_status
