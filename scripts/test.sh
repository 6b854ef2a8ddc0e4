#!/usr/bin/env bash
# Runs the whole test suite from a clean clone and prints one closing line: "N passed, M failed".
# Installs nothing it does not need; later suites that need Redis or nginx install them here.
set -uo pipefail
cd "$(dirname "$0")/.."

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

echo "${passed} passed, ${failed} failed"
exit $status
