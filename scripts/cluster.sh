#!/usr/bin/env bash
# A local cluster in one command: Redis, 2 silos, 2 front-ends and nginx in front of them.
#
#   scripts/cluster.sh start     # build (Release) and start everything; prints every endpoint
#   scripts/cluster.sh status    # which processes run, their readiness, and every endpoint
#   scripts/cluster.sh stop      # stop everything this script started (by PID)
#   scripts/cluster.sh add-silo N       # start silo N (3, 4 …) and join it to the cluster
#   scripts/cluster.sh add-frontend N   # start front-end N (3, 4 …) and add it to nginx
#
# Ports (override with the environment): nginx 8000 (NGINX_PORT), front-end N on 8000+N,
# silo N on 11110+N (silo-to-silo), 30000+N (gateway) and 8080+N (health, /metrics, /stats),
# Redis 6380 (REDIS_PORT). PORT_BASE (default 8000) moves all of them together: each port is
# its default + PORT_BASE - 8000 (a second cluster on the same host: PORT_BASE=9200; every port
# stays below 32768). DASHBOARD=1 starts silo N with the Orleans dashboard on 8090+N.
# STORE=redis makes rooms durable (silos run with --store redis).
# BOT=1 (with start) also starts the sample bot (samples/Bot, a silo answering /roll in /chat
# rooms) on silo port 11100 and health port 8079, and front-ends run with /chat's Stream on.
# State and logs live in .cluster/ (CLUSTER_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir="${CLUSTER_DIR:-$root/.cluster}"
port_base="${PORT_BASE:-8000}"
if ! [[ "$port_base" =~ ^[0-9]+$ ]] || ((port_base < 3000 || port_base > 10700)); then
  echo "PORT_BASE must be a number from 3000 to 10700 (every port stays between 1024 and 32768), not '$port_base'" >&2; exit 2
fi
shift_by=$((port_base - 8000))
redis_port="${REDIS_PORT:-$((6380 + shift_by))}"
nginx_port="${NGINX_PORT:-$port_base}"
dashboard="${DASHBOARD:-0}"
[[ "$dashboard" == 0 || "$dashboard" == 1 ]] || { echo "DASHBOARD must be 0 or 1, not '$dashboard'" >&2; exit 2; }
bot="${BOT:-0}"
[[ "$bot" == 0 || "$bot" == 1 ]] || { echo "BOT must be 0 or 1, not '$bot'" >&2; exit 2; }
config="${CONFIGURATION:-Release}"
silo_dll="$root/src/Silo/bin/$config/net10.0/Broker.Silo.dll"
frontend_dll="$root/src/WsFrontend/bin/$config/net10.0/Broker.WsFrontend.dll"
bot_dll="$root/samples/Bot/bin/$config/net10.0/Broker.Samples.Bot.dll"

need() {
  command -v "$1" >/dev/null 2>&1 && return
  echo "installing $2 (apt-get)…"
  apt-get update -qq && apt-get install -y -qq "$2" >/dev/null
}

frontend_port() { echo $((8000 + shift_by + $1)); }
silo_port() { echo $((11110 + shift_by + $1)); }
gateway_port() { echo $((30000 + shift_by + $1)); }
health_port() { echo $((8080 + shift_by + $1)); }
dashboard_port() { echo $((8090 + shift_by + $1)); }
bot_silo_port() { echo $((11100 + shift_by)); }
bot_health_port() { echo $((8079 + shift_by)); }

alive() { [[ -f "$dir/$1.pid" ]] && kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null; }

wait_healthy() { # name url
  for _ in $(seq 1 120); do
    if curl -fsS "$2" >/dev/null 2>&1; then return 0; fi
    alive "$1" || { echo "$1 exited; see $dir/$1.log" >&2; return 1; }
    sleep 0.5
  done
  echo "$1 not healthy after 60 s; see $dir/$1.log" >&2
  return 1
}

start_redis() {
  alive redis && return
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  for _ in $(seq 1 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && return; sleep 0.1; done
  echo "redis did not start; see $dir/redis.log" >&2; return 1
}

# Where each process answers: printed by start and status. $dir/siloN.dashboard holds the
# dashboard port of a silo started with DASHBOARD=1.
print_silo() { # N
  local n=$1 health="http://127.0.0.1:$(health_port "$1")"
  echo "silo $n: silo port $(silo_port "$n"), gateway $(gateway_port "$n")"
  echo "  health   $health/health/live  $health/health/ready  ($health/healthz = ready, with JSON)"
  echo "  metrics  $health/metrics"
  echo "  stats    $health/stats"
  if [[ -f "$dir/silo$n.dashboard" ]]; then
    echo "  Orleans dashboard http://127.0.0.1:$(cat "$dir/silo$n.dashboard")/"
  else
    echo "  Orleans dashboard off (DASHBOARD=1 turns it on)"
  fi
}

print_frontend() { # N
  local base="127.0.0.1:$(frontend_port "$1")"
  echo "front-end $1: ws://$base/chat (any namespace: ws://$base/{ns})"
  echo "  health   http://$base/health/live  http://$base/health/ready  (http://$base/healthz = ready, with JSON)"
  echo "  metrics  http://$base/metrics"
  echo "  API      http://$base/api/…  (http://$base/openapi/v1.json; its own port: nginx does not forward /api)"
}

print_nginx() {
  local base="127.0.0.1:$nginx_port"
  echo "nginx: ws://$base/chat (round-robin over the front-ends, no sticky sessions)"
  echo "  health   http://$base/health/live (nginx itself)  http://$base/health/ready (200 while a front-end is ready)"
  echo "  /metrics and /api answer 404 here: scrape and call each front-end on its own port"
}

start_silo() { # N
  local n=$1 name="silo$1"
  if alive "$name"; then print_silo "$n"; return; fi
  local extra=()
  rm -f "$dir/$name.dashboard"
  if [[ "$dashboard" == 1 ]]; then
    extra=(--dashboard-port "$(dashboard_port "$n")")
    dashboard_port "$n" >"$dir/$name.dashboard"
  fi
  nohup dotnet "$silo_dll" --redis "127.0.0.1:$redis_port" --store "${STORE:-memory}" --silo-port "$(silo_port "$n")" \
    --gateway-port "$(gateway_port "$n")" --health-port "$(health_port "$n")" "${extra[@]}" >"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
  wait_healthy "$name" "http://127.0.0.1:$(health_port "$n")/health/ready"
  print_silo "$n"
}

print_bot() {
  local health="http://127.0.0.1:$(bot_health_port)"
  echo "bot (samples/Bot): silo port $(bot_silo_port), answers /roll in /chat rooms"
  echo "  health   $health/health/live  $health/health/ready"
}

# The sample bot: an application silo of the same cluster. Front-ends started after it run with
# /chat's Stream on ($dir/chat-stream marks that).
start_bot() {
  touch "$dir/chat-stream"
  if alive bot; then print_bot; return; fi
  nohup dotnet "$bot_dll" --redis "127.0.0.1:$redis_port" --silo-port "$(bot_silo_port)" \
    --health-port "$(bot_health_port)" >"$dir/bot.log" 2>&1 &
  echo $! >"$dir/bot.pid"
  wait_healthy bot "http://127.0.0.1:$(bot_health_port)/health/ready"
  print_bot
}

# Behind nginx on this host every client has nginx's address: the per-address cap would count
# them all as one client (docs/security.md), so it is off; cap per client at the proxy instead.
start_frontend() { # N
  local n=$1 name="frontend$1"
  if alive "$name"; then print_frontend "$n"; return; fi
  local extra=()
  [[ -f "$dir/chat-stream" ]] && extra=(--Broker:Namespaces:chat:Stream=true)
  nohup dotnet "$frontend_dll" --redis "127.0.0.1:$redis_port" --urls "http://127.0.0.1:$(frontend_port "$n")" \
    --node-id "fe-$n" --Broker:MaxConnectionsPerIp=0 "${extra[@]}" >"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
  wait_healthy "$name" "http://127.0.0.1:$(frontend_port "$n")/health/ready"
  print_frontend "$n"
}

write_nginx_conf() {
  local upstreams=""
  for pidfile in "$dir"/frontend*.pid; do
    local n=${pidfile##*/frontend}; n=${n%.pid}
    upstreams+="    server 127.0.0.1:$(frontend_port "$n");"$'\n'
  done
  sed -e "s|@PORT@|$nginx_port|" -e "s|@DIR@|$dir|g" "$root/scripts/nginx.conf.template" \
    | awk -v up="$upstreams" '{ if ($0 ~ /@UPSTREAMS@/) printf "%s", up; else print }' >"$dir/nginx.conf"
}

start_nginx() {
  write_nginx_conf
  if alive nginx; then
    nginx -p "$dir" -c "$dir/nginx.conf" -s reload
  else
    nginx -p "$dir" -c "$dir/nginx.conf"
  fi
  print_nginx
}

# The HTTP status of a GET, or "no answer".
http_status() { # url
  local code; code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null) || true
  [[ -n "$code" && "$code" != 000 ]] && echo "$code" || echo "no answer"
}


stop_one() { # name
  alive "$1" || { rm -f "$dir/$1.pid"; return 0; }
  local pid; pid=$(cat "$dir/$1.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$dir/$1.pid"
}

case "${1:-}" in
  start)
    need redis-server redis-server; need nginx nginx; need curl curl
    mkdir -p "$dir/nginx-tmp"
    dotnet build "$root/Broker.sln" -c "$config" --nologo -v quiet >/dev/null
    start_redis
    rm -f "$dir/chat-stream"
    start_silo 1; start_silo 2
    if [[ "$bot" == 1 ]]; then start_bot; fi
    start_frontend 1; start_frontend 2
    start_nginx
    ;;
  add-silo) start_silo "${2:?silo number}" ;;
  add-frontend) start_frontend "${2:?front-end number}"; start_nginx ;;
  status)
    # Which processes run (pid), whether they are ready (/health/ready), and where they answer.
    for pidfile in "$dir"/redis.pid "$dir"/silo*.pid "$dir"/bot.pid "$dir"/frontend*.pid "$dir"/nginx.pid; do
      [[ -e "$pidfile" ]] || continue
      name=$(basename "$pidfile" .pid)
      if ! alive "$name"; then echo "$name: not running"; continue; fi
      state="running (pid $(cat "$pidfile"))"
      case "$name" in
        silo*) n=${name#silo}; echo "$name: $state, ready: $(http_status "http://127.0.0.1:$(health_port "$n")/health/ready")"; print_silo "$n" ;;
        bot) echo "$name: $state, ready: $(http_status "http://127.0.0.1:$(bot_health_port)/health/ready")"; print_bot ;;
        frontend*) n=${name#frontend}; echo "$name: $state, ready: $(http_status "http://127.0.0.1:$(frontend_port "$n")/health/ready")"; print_frontend "$n" ;;
        nginx) echo "$name: $state, ready: $(http_status "http://127.0.0.1:$nginx_port/health/ready")"; print_nginx ;;
        redis) echo "$name: $state, 127.0.0.1:$redis_port" ;;
        *) echo "$name: $state" ;;
      esac
    done
    ;;
  stop)
    # Front-ends first (their clients get 1012 and leave their rooms), then silos, then the rest.
    [[ -d "$dir" ]] || exit 0
    for pidfile in "$dir"/frontend*.pid; do [[ -e "$pidfile" ]] && stop_one "$(basename "$pidfile" .pid)"; done
    stop_one bot
    for pidfile in "$dir"/silo*.pid; do [[ -e "$pidfile" ]] && stop_one "$(basename "$pidfile" .pid)"; done
    if alive nginx; then nginx -p "$dir" -c "$dir/nginx.conf" -s quit || true; fi
    for _ in $(seq 1 50); do alive nginx || break; sleep 0.1; done
    rm -f "$dir/nginx.pid"
    if alive redis; then redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || stop_one redis; fi
    rm -f "$dir/redis.pid" "$dir"/silo*.dashboard "$dir/chat-stream"
    echo "stopped"
    ;;
  *)
    sed -n '2,18p' "$0"; exit 2 ;;
esac
