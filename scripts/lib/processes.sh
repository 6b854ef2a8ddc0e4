# Sourced by scripts/compare.sh and scripts/independent.sh: starting, waiting for and stopping
# the processes a benchmark script starts. Only those are ever stopped, by PID, newest first,
# also on Ctrl+C or an error. The sourcing script sets $out (where each process's log goes)
# before it starts anything, and may set $tmp_dir (removed at exit).
# shellcheck shell=bash

started=()    # PIDs this script started, in start order
tmp_dir=""
log() { printf '\n== %s\n' "$*" >&2; }

stop_pid() { # pid
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

stop_all() { # newest first: front-ends before silo before Redis
  local i
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do stop_pid "${started[i]}"; done
  started=()
}

cleanup() {
  local status=$?
  stop_all
  if [[ -n $tmp_dir && -d $tmp_dir ]]; then rm -rf "$tmp_dir"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

need_ports() {
  local p
  for p in "$@"; do
    port_free "$p" || { echo "port $p is in use; pick others (see --help: ports)" >&2; exit 1; }
  done
}

start() { # name command… (stdout/stderr to $out/name.log); sets $last_pid
  local name=$1; shift
  "$@" >"$out/$name.log" 2>&1 &
  last_pid=$!
  started+=("$last_pid")
  echo "$name: pid $last_pid ($*)" >&2
}

wait_up() { # name pid url [expected-status-regex]
  local code
  for _ in $(seq 1 480); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$3" 2>/dev/null || true)
    if [[ $code =~ ${4:-^200$} ]]; then return 0; fi
    kill -0 "$2" 2>/dev/null || { echo "$1 exited; see $out/$1.log" >&2; tail -20 "$out/$1.log" >&2; exit 1; }
    sleep 0.25
  done
  echo "$1 not up after 120 s; see $out/$1.log" >&2
  exit 1
}

start_redis() { # name port
  need_ports "$2"
  start "$1" redis-server --port "$2" --bind 127.0.0.1 --save '' --appendonly no --daemonize no
  local pid=$last_pid
  for _ in $(seq 1 50); do redis-cli -p "$2" ping >/dev/null 2>&1 && { last_pid=$pid; return 0; }; sleep 0.1; done
  echo "redis did not start; see $out/$1.log" >&2
  exit 1
}

# Ours as the comparisons run it: Redis, 1 silo, 2 front-ends (cluster mode, as scripts/cluster.sh
# does, without nginx). Reads the *_port variables, silo_dll, frontend_dll, ours_env (K=V …),
# ours_args (front-end switches) and metrics_enabled (default true); sets redis_pid, silo_pid,
# fe1_pid, fe2_pid once every one answers its health check.
start_ours() {
  log "ours: Redis :$ours_redis_port, 1 silo, 2 front-ends :$fe1_port :$fe2_port"
  need_ports "$silo_port" "$gateway_port" "$silo_health_port" "$fe1_port" "$fe2_port"
  start_redis ours-redis "$ours_redis_port"; redis_pid=$last_pid
  # shellcheck disable=SC2086 # ours_env is a list of K=V
  start ours-silo env Metrics__Enabled="${metrics_enabled:-true}" $ours_env dotnet "$silo_dll" --redis "127.0.0.1:$ours_redis_port" --silo-port "$silo_port" \
    --gateway-port "$gateway_port" --health-port "$silo_health_port"
  silo_pid=$last_pid
  wait_up ours-silo "$silo_pid" "http://127.0.0.1:$silo_health_port/healthz"
  local i port
  for i in 1 2; do
    port=fe${i}_port
    # shellcheck disable=SC2086 # ours_env and ours_args are lists
    start "ours-fe$i" env Metrics__Enabled="${metrics_enabled:-true}" $ours_env dotnet "$frontend_dll" --redis "127.0.0.1:$ours_redis_port" \
      --urls "http://127.0.0.1:${!port}" --node-id "fe-$i" $ours_args
    printf -v "fe${i}_pid" '%s' "$last_pid"
  done
  wait_up ours-fe1 "$fe1_pid" "http://127.0.0.1:$fe1_port/healthz"
  wait_up ours-fe2 "$fe2_pid" "http://127.0.0.1:$fe2_port/healthz"
}

# The Node peer: a temp copy of ../shared/baseline (never changed), npm install, its Redis and two
# broker-server.mjs. Reads base_redis_port, base1_port, base2_port; sets tmp_dir, bredis_pid,
# node1_pid, node2_pid once both answer.
start_baseline() {
  log "peer: npm install in a temp copy of the baseline"
  tmp_dir=$(mktemp -d /tmp/baseline.XXXXXX)
  local src="${BASELINE_DIR:-$root/../shared/baseline}"
  [[ -f $src/broker-server.mjs ]] || src=/work/shared/baseline
  cp -r "$src/." "$tmp_dir/"
  chmod -R u+w "$tmp_dir"
  (cd "$tmp_dir" && npm install --no-audit --no-fund --loglevel=error) >"$out/npm-install.log" 2>&1 \
    || { tail -20 "$out/npm-install.log" >&2; exit 1; }
  log "peer: Redis :$base_redis_port, broker-server.mjs :$base1_port :$base2_port"
  need_ports "$base1_port" "$base2_port"
  start_redis base-redis "$base_redis_port"; bredis_pid=$last_pid
  start base-node1 env REDIS_URL="redis://127.0.0.1:$base_redis_port" node "$tmp_dir/broker-server.mjs" "$base1_port"
  node1_pid=$last_pid
  start base-node2 env REDIS_URL="redis://127.0.0.1:$base_redis_port" node "$tmp_dir/broker-server.mjs" "$base2_port"
  node2_pid=$last_pid
  wait_up base-node1 "$node1_pid" "http://127.0.0.1:$base1_port/" '^426$'
  wait_up base-node2 "$node2_pid" "http://127.0.0.1:$base2_port/" '^426$'
}
