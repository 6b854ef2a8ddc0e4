#!/usr/bin/env bash
# Runs the whole test suite from a clean clone and prints one closing line: "N passed, M failed".
# Installs what the tests need and the machine lacks (Debian packages: redis-server and nginx
# for the multi-process cluster tests, Node.js and npm for tests/clients, chromium for the chat
# page's browser test: Debian's own build, driven by playwright-core; ~80 s to install here;
# nats-server for tests/Streams.Tests' NATS measurement).
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
command -v nats-server >/dev/null 2>&1 || [[ -x /usr/sbin/nats-server ]] || missing+=(nats-server)
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

# Node's built-in test runner over a folder's *.test.mjs, against real processes of the same
# Release build; its TAP summary lines are added to the totals. A runner that fails without a
# failed test (a crash, a hang) counts as one failure.
node_status=0
run_node_tests() { # package-folder tests-folder tap-name
  local dir=$1 tests=$2 tap="$results/$3.tap" status np nf
  if ! (cd "$dir" && npm ci --no-audit --no-fund); then
    echo "npm ci failed in $dir"
    node_status=1
    failed=$((failed + 1))
    return
  fi
  timeout --kill-after=30s 15m node --test --test-reporter=tap "$tests"/*.test.mjs | tee "$tap"
  status=${PIPESTATUS[0]}
  np=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" | tail -n 1)
  nf=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" | tail -n 1)
  if [[ $status -ne 0 ]]; then
    node_status=$status
    if [[ ${nf:-0} -eq 0 ]]; then nf=1; fi
  fi
  passed=$((passed + ${np:-0}))
  failed=$((failed + ${nf:-0}))
}
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm
fi
# A Node.js `ws` client and the chat page in headless chromium (tests/clients); the JavaScript
# client (clients/js/test) against front-end, silo and redis-server processes.
run_node_tests tests/clients tests/clients clients
run_node_tests clients/js clients/js/test client-js

echo "${passed} passed, ${failed} failed"
if [[ $status -ne 0 ]]; then
  exit $status
fi
exit $node_status
