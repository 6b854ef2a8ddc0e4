#!/usr/bin/env bash
# Our broker against the Node peer (../shared/baseline), measured by the independent Node load
# generator (bench/node/fanout.mjs, `ws`), not by broker-bench: issue 18's kind of measurement,
# reproducible. Same box, one side after the other; prints a side-by-side table with ratios.
#
#   scripts/independent.sh                      # ~5 min with the defaults
#   scripts/independent.sh --only ours --no-build
#
#   1. builds Release (Broker.sln); npm ci in bench/node (ws 8.23.0, pinned by its lock file)
#   2. starts ours: Redis, 1 silo, 2 front-ends (cluster mode, as scripts/compare.sh does)
#   3. runs, each a fresh fanout.mjs process with --pids of every server process (Redis included):
#        cold      10 rooms × 100 members, 10 publishers, --rate publishes/s (50k deliveries/s),
#                  started as soon as every server first answers its health check, publishing as
#                  soon as the members joined (--from-ready), measured --cold-duration s
#        run2      the same workload, warm: joins settle, --warmup s, then --duration s measured
#        run3      the same again
#        saturate  the same at twice the rate: 100k deliveries/s offered
#        bb-warm   the cross-check: broker-bench (bench/) runs run3's workload on the same servers
#                  (--no-cross-check skips it), so both tools' figures come from one minute
#   4. stops ours; copies the baseline to a temp dir, npm install, starts its Redis and 2
#      broker-server.mjs, runs the same four, stops them
#   5. prints the comparison (bench/node/table.mjs)
# Only the processes this script started are stopped (by PID), also on Ctrl+C or error.
#
# Options:
#   --duration S        measured seconds of run2, run3, saturate (default 20)
#   --cold-duration S   measured seconds of cold (default 20: the issue's "first 20 s after ready")
#   --warmup S          unrecorded publishing before run2/run3/saturate's window (default 3)
#   --rate N            publishes/s of cold, run2, run3 (default 500, over 10 publishers); saturate: twice
#   --payload B         data bytes (default 100)
#   --workers N         fanout.mjs load threads (default 2)
#   --drain S           longest wait for late deliveries after each window (default 10)
#   --runs LIST         subset of cold,run2,run3,saturate,bb-warm (default all)
#   --no-cross-check    no bb-warm (then .NET is needed only for our servers)
#   --only ours|baseline   run one side only
#   --out DIR           results directory (default .bench/independent-DATE)
#   --no-build          use the Release binaries as they are
#   --ours-args "…"     extra switches for our front-ends (default as scripts/compare.sh's:
#                       "--Broker:RateLimitPerSecond=0 --Broker:MaxConnectionsPerIp=0", so both tools
#                       see the same broker configuration)
#   --ours-env "K=V …"  environment for our silo and front-ends only
# Ports (environment; defaults apart from scripts/compare.sh's, so both can run on one box):
# OURS_REDIS_PORT 6393, BASE_REDIS_PORT 6394, FE1_PORT 8111, FE2_PORT 8112, SILO_PORT 11193,
# GATEWAY_PORT 30093, SILO_HEALTH_PORT 8193, BASE1_PORT 8211, BASE2_PORT 8212.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

duration=20 cold_duration=20 warmup=3 rate=500 payload=100 workers=2 drain=10
runs="cold,run2,run3,saturate,bb-warm" only="" no_build="" out="" ours_env=""
ours_args="--Broker:RateLimitPerSecond=0 --Broker:MaxConnectionsPerIp=0"
while (($#)); do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --cold-duration) cold_duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --payload) payload=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --drain) drain=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --no-cross-check) runs=${runs//bb-warm/}; shift ;;
    --only) only=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-build) no_build=1; shift ;;
    --ours-args) ours_args=$2; shift 2 ;;
    --ours-env) ours_env=$2; shift 2 ;;
    -h | --help) sed -n "2,$(grep -n "^set -euo" "$0" | cut -d: -f1)p" "$0" | head -n -1; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$only" in "" | ours | baseline) ;; *) echo "--only takes ours or baseline, not $only" >&2; exit 2 ;; esac

ours_redis_port=${OURS_REDIS_PORT:-6393}
base_redis_port=${BASE_REDIS_PORT:-6394}
fe1_port=${FE1_PORT:-8111}
fe2_port=${FE2_PORT:-8112}
silo_port=${SILO_PORT:-11193}
gateway_port=${GATEWAY_PORT:-30093}
silo_health_port=${SILO_HEALTH_PORT:-8193}
base1_port=${BASE1_PORT:-8211}
base2_port=${BASE2_PORT:-8212}

out=${out:-$root/.bench/independent-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
silo_dll="$root/src/Silo/bin/Release/net10.0/Broker.Silo.dll"
frontend_dll="$root/src/WsFrontend/bin/Release/net10.0/Broker.WsFrontend.dll"
tool_dir="$root/bench/node"
bench=(dotnet "$root/bench/bin/Release/net10.0/broker-bench.dll")
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# --- process handling (the same approach as scripts/compare.sh: only what we started, by PID) ---
# Starting, waiting for and stopping the processes this script starts (only those, by PID).
# shellcheck source=lib/processes.sh
source "$root/scripts/lib/processes.sh"

has() { [[ ",$runs," == *",$1,"* ]]; }

run_all() { # side url1 url2 pids pid-names ready-ms
  local side=$1 u1=$2 u2=$3 pids=$4 names=$5 ready=$6 dir="$out/$1"
  mkdir -p "$dir"
  run() { # name args…
    local name=$1; shift
    local cmd=(node "$tool_dir/fanout.mjs" --url "$u1" --url "$u2" --rooms 10 --members 100 --publishers 10 --payload "$payload"
      --workers "$workers" --drain "$drain" --pids "$pids" --pid-names "$names" --label "$side $name" "$@" --json-out "$dir/$name.json")
    log "$side: $name   (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    echo "$side $name: ${cmd[*]}" >>"$out/commands.txt"
    if ! "${cmd[@]}" >"$dir/$name.md" 2> >(tee "$dir/$name.log" >&2); then
      echo "$side $name: problems (see $dir/$name.md)" | tee -a "$out/failures.txt" >&2
    fi
    cat "$dir/$name.md"
  }
  has cold && run cold --rate "$rate" --duration "$cold_duration" --from-ready --ready-at "$ready"
  has run2 && run run2 --rate "$rate" --duration "$duration" --warmup "$warmup"
  has run3 && run run3 --rate "$rate" --duration "$duration" --warmup "$warmup"
  has saturate && run saturate --rate $((rate * 2)) --duration "$duration" --warmup "$warmup"
  if has bb-warm; then
    local bb=("${bench[@]}" fanout --url "$u1" --url "$u2" --rooms 10 --members 100 --publishers 10 --rate "$rate" --payload "$payload"
      --duration "$duration" --warmup "$warmup" --pids "$pids" --json-out "$dir/bb-warm.json")
    log "$side: bb-warm, broker-bench   (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    echo "$side bb-warm: broker-bench ${bb[*]:2}" >>"$out/commands.txt"
    if ! "${bb[@]}" >"$dir/bb-warm.md" 2> >(tee "$dir/bb-warm.log" >&2); then
      echo "$side bb-warm: problems (see $dir/bb-warm.md)" | tee -a "$out/failures.txt" >&2
    fi
    cat "$dir/bb-warm.md"
  fi
  return 0
}

now_ms() { date +%s%3N; }

command -v redis-server >/dev/null || { echo "redis-server is missing" >&2; exit 1; }
command -v node >/dev/null && command -v npm >/dev/null || { echo "node and npm are needed" >&2; exit 1; }

if [[ -z $no_build ]]; then
  log "build (Release)"
  dotnet build "$root/Broker.sln" -c Release --nologo -v quiet >"$out/build.log" 2>&1 || { tail -30 "$out/build.log" >&2; exit 1; }
fi
if [[ ! -d $tool_dir/node_modules/ws ]]; then
  log "npm ci in bench/node"
  (cd "$tool_dir" && npm ci --no-audit --no-fund --loglevel=error) >"$out/npm-tool.log" 2>&1 || { tail -20 "$out/npm-tool.log" >&2; exit 1; }
fi
echo "results in $out" >&2
: >"$out/commands.txt"

if [[ $only != baseline ]]; then
  start_ours
  ready=$(now_ms)
  run_all ours "ws://127.0.0.1:$fe1_port" "ws://127.0.0.1:$fe2_port" "$redis_pid,$silo_pid,$fe1_pid,$fe2_pid" redis,silo,fe1,fe2 "$ready"
  log "ours: stop"
  stop_all
fi

if [[ $only != ours ]]; then
  start_baseline
  ready=$(now_ms)
  run_all baseline "ws://127.0.0.1:$base1_port" "ws://127.0.0.1:$base2_port" "$bredis_pid,$node1_pid,$node2_pid" redis,node1,node2 "$ready"
  log "peer: stop"
  stop_all
fi

log "comparison (ours/peer; deliveries per server CPU-second is the figure that counts on 2 cores)"
mkdir -p "$out/ours" "$out/baseline"
node "$tool_dir/table.mjs" --ours "$out/ours" --baseline "$out/baseline" --runs "$runs" | tee "$out/comparison.md"
if [[ -s "$out/failures.txt" ]]; then
  echo >&2; cat "$out/failures.txt" >&2
fi
echo "results, logs and tables: $out" >&2
