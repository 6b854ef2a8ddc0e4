#!/usr/bin/env bash
# What tracing costs (docs/performance.md "What tracing costs"): the fan-out workload of
# scripts/compare.sh (ours only) three times over — no listener; the OpenTelemetry SDK sampling
# every trace; the SDK sampling 1% (parentbased_traceidratio 0.01) — and the deliveries per server
# CPU-second of each. The SDK comes from a startup hook (scripts/trace-cost/, DOTNET_STARTUP_HOOKS)
# with the standard OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG variables and an exporter that
# only counts (no network), so the figures are the cost of making the spans, not of shipping them.
#
#   scripts/trace-cost.sh                       # ~6 min
#   scripts/trace-cost.sh --duration 30 --rate 500   # any further switches go to compare.sh
#
# Ports: as compare.sh (OURS_REDIS_PORT, FE1_PORT, ... in the environment).
set -euo pipefail
cd "$(dirname "$0")/.."
out=.bench/trace-cost-$(date +%Y%m%d-%H%M%S)
hook_dir=$PWD/$out/hook
mkdir -p "$out"
echo "building Release and the hook into $hook_dir" >&2
dotnet build Broker.sln -c Release --nologo -v quiet >"$out/build.log" 2>&1 || { tail -30 "$out/build.log" >&2; exit 1; }
dotnet build scripts/trace-cost -c Release --nologo -v quiet -o "$hook_dir" >"$out/hook-build.log" 2>&1 || { tail -20 "$out/hook-build.log" >&2; exit 1; }
hook=$hook_dir/TraceCostHook.dll

run() {
  local name=$1; shift
  echo "== $name" >&2
  env "$@" scripts/compare.sh --no-build --only ours --workloads fanout --out "$out/$name" "${args[@]}" >"$out/$name.txt" 2>&1 \
    || { tail -30 "$out/$name.txt" >&2; exit 1; }
}

args=("$@")
run off
run all DOTNET_STARTUP_HOOKS="$hook" OTEL_TRACES_SAMPLER=parentbased_always_on
run ratio-1pct DOTNET_STARTUP_HOOKS="$hook" OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.01

for name in off all ratio-1pct; do
  echo "== $name"
  grep -E "^\| *(fanout|workload|---)" "$out/$name/comparison.md" || cat "$out/$name/comparison.md"
  grep -h "trace-cost:" "$out/$name"/*.log 2>/dev/null || true
done
echo "results: $out" >&2
