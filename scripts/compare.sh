#!/usr/bin/env bash
# Our broker against the Node baseline (../shared/baseline: ws + Redis pub/sub), on this machine,
# with the same workloads, one after the other; prints a side-by-side table with ratios.
#
#   scripts/compare.sh                          # ~11 min with the defaults
#   scripts/compare.sh --duration 60 --conns 18000
#
#   1. builds Release (Broker.sln, the load tool included)
#   2. starts ours: Redis, 1 silo, 2 front-ends (cluster mode, as scripts/cluster.sh does, without nginx)
#   3. runs cold (fanout measured from the moment every server answers its health check: what
#      clients see right after a deploy or a failover), conns (RSS of fresh processes), an
#      unrecorded warm-up fanout, then fanout
#      (10 rooms × 100 members, --rate publishes/s: 50k deliveries/s), saturate (the same at twice
#      the rate: 100k deliveries/s offered, the box saturates), smallrooms (200 rooms × 10 members,
#      200 publishers, ten times the rate: 50k deliveries/s from ten times the publishes), bigrooms (2 rooms × 1,000 members,
#      rate/10 publishes/s: 50k deliveries/s), echo, crossnode, with --pids of every server
#      process (Redis included)
#   4. stops ours
#   5. copies the baseline to a temp dir, npm install, starts its Redis and 2 broker-server.mjs
#   6. runs the same workloads, stops them
#   7. prints the comparison (per server CPU-second; ours/baseline)
# Only the processes this script started are stopped (by PID), also on Ctrl+C or error.
#
# Options:
#   --duration S      measured seconds per workload (default 20; crossnode runs twice)
#   --warmup S        warm-up seconds of fanout/echo/crossnode (default 3)
#   --rate N          fanout publishes/s (default 500, over 10 publishers)
#   --payload B       fanout data bytes (default 100)
#   --conns N         idle connections opened on one front-end (default 15000, the issue's 0 → 15k; ≤ ~19k: fd limit)
#   --conns-rate N    new connections per second (default 2000)
#   --hold S          hold time of the idle connections (default 10)
#   --prewarm S       unrecorded fanout before the measured ones, on each side (default 10; 0 = none):
#                     a cold server (JIT, first grain activations) builds a backlog that a 3 s
#                     warm-up does not absorb
#   --only ours|baseline   run one side only (the table then shows one column)
#   --workloads LIST  comma-separated subset of cold,conns,fanout,saturate,smallrooms,bigrooms,echo,crossnode (default all)
#   --cold-duration S measured seconds of cold (default 20: the issue's "first 20 s after ready")
#   --out DIR         results directory (default .bench/compare-DATE)
#   --no-build        use the Release binaries as they are (scripts/trace-cost.sh builds once)
#   --ours-args "…"   extra switches for our front-ends
#                     (default "--Broker:RateLimitPerSecond=0 --Broker:MaxConnectionsPerIp=0":
#                     the per-connection rate limit and the per-address connection cap are abuse
#                     guards the baseline does not have; a closed echo loop of 100 connections
#                     runs into the first, conns from two source addresses into the second;
#                     pass --ours-args "" to keep them)
#   --ours-env "K=V …"  environment for our silo and front-ends only (not the load tool), e.g. a
#                     runtime switch to measure: --ours-env "DOTNET_TieredPGO=0"
#   --metrics on|off  metrics on our silo and front-ends (Metrics:Enabled; default on, the shipped default):
#                     run both to see what metrics cost (docs/performance.md, "What metrics cost")
#   --stream on|off   the bench's namespace (chat) produces its rooms to Orleans streams
#                     (--Broker:Namespaces:chat:Stream=true on our front-ends; default off, the shipped
#                     default): run both to see what Stream costs (docs/performance.md, "What Stream costs")
# Ports (environment): OURS_REDIS_PORT 6391, BASE_REDIS_PORT 6392, FE1_PORT 8101, FE2_PORT 8102,
# SILO_PORT 11191, GATEWAY_PORT 30091, SILO_HEALTH_PORT 8191, BASE1_PORT 8201, BASE2_PORT 8202.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

duration=20 warmup=3 rate=500 payload=100 conns=15000 conns_rate=2000 hold=10 prewarm=10
metrics=on stream=off ours_env="" only="" no_build="" workloads="cold,conns,fanout,saturate,smallrooms,bigrooms,echo,crossnode" cold_duration=20 out="" ours_args="--Broker:RateLimitPerSecond=0 --Broker:MaxConnectionsPerIp=0"
while (($#)); do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --payload) payload=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --conns-rate) conns_rate=$2; shift 2 ;;
    --hold) hold=$2; shift 2 ;;
    --prewarm) prewarm=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --workloads) workloads=$2; shift 2 ;;
    --cold-duration) cold_duration=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-build) no_build=1; shift ;;
    --ours-args) ours_args=$2; shift 2 ;;
    --ours-env) ours_env=$2; shift 2 ;;
    --metrics) metrics=$2; shift 2 ;;
    --stream) stream=$2; shift 2 ;;
    -h | --help) sed -n '2,54p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

case "$metrics" in
  on) metrics_enabled=true ;;
  off) metrics_enabled=false ;;
  *) echo "--metrics takes on or off, not $metrics" >&2; exit 2 ;;
esac

case "$stream" in
  on) ours_args="$ours_args --Broker:Namespaces:chat:Stream=true" ;;
  off) ;;
  *) echo "--stream takes on or off, not $stream" >&2; exit 2 ;;
esac

ours_redis_port=${OURS_REDIS_PORT:-6391}
base_redis_port=${BASE_REDIS_PORT:-6392}
fe1_port=${FE1_PORT:-8101}
fe2_port=${FE2_PORT:-8102}
silo_port=${SILO_PORT:-11191}
gateway_port=${GATEWAY_PORT:-30091}
silo_health_port=${SILO_HEALTH_PORT:-8191}
base1_port=${BASE1_PORT:-8201}
base2_port=${BASE2_PORT:-8202}

out=${out:-$root/.bench/compare-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
silo_dll="$root/src/Silo/bin/Release/net10.0/Broker.Silo.dll"
frontend_dll="$root/src/WsFrontend/bin/Release/net10.0/Broker.WsFrontend.dll"
bench=(dotnet "$root/bench/bin/Release/net10.0/broker-bench.dll")
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# Starting, waiting for and stopping the processes this script starts (only those, by PID).
# shellcheck source=lib/processes.sh
source "$root/scripts/lib/processes.sh"

has() { [[ ",$workloads," == *",$1,"* ]]; }

run_workloads() { # side url1 url2 pids
  local side=$1 u1=$2 u2=$3 pids=$4 dir="$out/$1"
  mkdir -p "$dir"
  local common=(--pids "$pids")
  run() { # name verb args…
    local w=$1 verb=$2; shift 2
    local cmd=(env ${tool_env:-} "${bench[@]}" "$verb" "$@" "${common[@]}" --json-out "$dir/$w.json")
    log "$side: $w   (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    echo "$side $w: load average $(cut -d' ' -f1-3 /proc/loadavg) before" >>"$out/load.txt"
    echo "${tool_env:-}${tool_env:+ }broker-bench $verb $* ${common[*]} --json-out $dir/$w.json" >>"$out/commands.txt"
    if ! "${cmd[@]}" >"$dir/$w.md" 2> >(tee "$dir/$w.log" >&2); then
      echo "$side $w FAILED (see $dir/$w.log)" | tee -a "$out/failures.txt" >&2
    fi
    cat "$dir/$w.md"
  }
  # First, on servers that have served nothing: no warm-up, measured from the first second. The
  # load tool is a fresh process too: it runs fully optimized code from its first call
  # (TieredCompilation=0), so that its own compiling does not show as the servers' latency.
  has cold && tool_env="DOTNET_TieredCompilation=0" run cold fanout --url "$u1" --url "$u2" --rooms 10 --members 100 --publishers 10 --rate "$rate" --payload "$payload" \
    --duration "$cold_duration" --warmup 0
  has conns && run conns conns --url "$u1" --count "$conns" --rate "$conns_rate" --hold "$hold" --source-ips 127.0.0.2,127.0.0.3
  if ((prewarm > 0)) && { has fanout || has saturate || has smallrooms || has bigrooms || has echo || has crossnode; }; then
    log "$side: unrecorded warm-up fanout, $prewarm s"
    "${bench[@]}" fanout --url "$u1" --url "$u2" --rooms 10 --members 100 --publishers 10 --rate "$rate" --payload "$payload" \
      --duration "$prewarm" --warmup 0 --pids "$pids" -q >"$dir/prewarm.md" 2>&1 || echo "$side warm-up fanout failed (see $dir/prewarm.md)" >&2
    grep -E '^\| (delivered/s|latency)' "$dir/prewarm.md" >&2 || true
  fi
  has fanout && run fanout fanout --url "$u1" --url "$u2" --rooms 10 --members 100 --publishers 10 --rate "$rate" --payload "$payload" \
    --duration "$duration" --warmup "$warmup"
  has saturate && run saturate fanout --url "$u1" --url "$u2" --rooms 10 --members 100 --publishers 10 --rate $((rate * 2)) \
    --payload "$payload" --duration "$duration" --warmup "$warmup"
  has smallrooms && run smallrooms fanout --url "$u1" --url "$u2" --rooms 200 --members 10 --publishers 200 --rate $((rate * 10)) \
    --payload "$payload" --duration "$duration" --warmup "$warmup"
  has bigrooms && run bigrooms fanout --url "$u1" --url "$u2" --rooms 2 --members 1000 --publishers 2 --rate $((rate / 10)) \
    --payload "$payload" --duration "$duration" --warmup "$warmup"
  has echo && run echo echo --url "$u1" --url "$u2" --connections 100 --duration "$duration" --warmup "$warmup"
  has crossnode && run crossnode crossnode --publisher-url "$u1" --member-url "$u2" --rooms 10 --members 100 --publishers 10 --rate 100 \
    --payload "$payload" --duration "$duration" --warmup "$warmup"
  return 0
}

command -v redis-server >/dev/null || { echo "redis-server is missing (apt-get install redis-server)" >&2; exit 1; }
command -v node >/dev/null && command -v npm >/dev/null || { echo "node and npm are needed for the baseline" >&2; exit 1; }

if [[ -z $no_build ]]; then
  log "build (Release)"
  dotnet build "$root/Broker.sln" -c Release --nologo -v quiet >"$out/build.log" 2>&1 || { tail -30 "$out/build.log" >&2; exit 1; }
fi
echo "results in $out" >&2
: >"$out/commands.txt"
: >"$out/load.txt"

if [[ $only != baseline ]]; then
  start_ours
  run_workloads ours "ws://127.0.0.1:$fe1_port" "ws://127.0.0.1:$fe2_port" "$redis_pid,$silo_pid,$fe1_pid,$fe2_pid"
  log "ours: stop"
  stop_all
fi

if [[ $only != ours ]]; then
  start_baseline
  run_workloads baseline "ws://127.0.0.1:$base1_port" "ws://127.0.0.1:$base2_port" "$bredis_pid,$node1_pid,$node2_pid"
  log "baseline: stop"
  stop_all
fi

log "comparison (ours/baseline; per server CPU-second is the figure that counts on 2 cores)"
mkdir -p "$out/ours" "$out/baseline"
"${bench[@]}" compare --ours "$out/ours" --baseline "$out/baseline" | tee "$out/comparison.md"
if [[ -s "$out/failures.txt" ]]; then
  echo >&2; cat "$out/failures.txt" >&2
fi
echo "load average before each workload (other processes share these 2 cores):" >&2
cat "$out/load.txt" >&2
echo "results, logs and tables: $out" >&2
