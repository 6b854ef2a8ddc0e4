#!/usr/bin/env bash
# A local cluster in one command: Redis, 2 silos, 2 front-ends and nginx in front of them.
#
#   scripts/cluster.sh start     # build (Release) and start everything; prints the URLs
#   scripts/cluster.sh status    # which processes run, and their /healthz
#   scripts/cluster.sh stop      # stop everything this script started (by PID)
#   scripts/cluster.sh add-silo N       # start silo N (3, 4 …) and join it to the cluster
#   scripts/cluster.sh add-frontend N   # start front-end N (3, 4 …) and add it to nginx
#
# Ports (override with the environment): nginx 8000 (NGINX_PORT), front-end N on 8000+N,
# silo N on 11110+N (silo-to-silo), 30000+N (gateway) and 8080+N (/healthz), Redis 6380
# (REDIS_PORT). STORE=redis makes rooms durable (silos run with --store redis).
# State and logs live in .cluster/ (CLUSTER_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir="${CLUSTER_DIR:-$root/.cluster}"
redis_port="${REDIS_PORT:-6380}"
nginx_port="${NGINX_PORT:-8000}"
config="${CONFIGURATION:-Release}"
silo_dll="$root/src/Silo/bin/$config/net10.0/Broker.Silo.dll"
frontend_dll="$root/src/WsFrontend/bin/$config/net10.0/Broker.WsFrontend.dll"

need() {
  command -v "$1" >/dev/null 2>&1 && return
  echo "installing $2 (apt-get)…"
  apt-get update -qq && apt-get install -y -qq "$2" >/dev/null
}

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

start_silo() { # N
  local n=$1 name="silo$1"
  alive "$name" && return
  nohup dotnet "$silo_dll" --redis "127.0.0.1:$redis_port" --store "${STORE:-memory}" --silo-port $((11110 + n)) \
    --gateway-port $((30000 + n)) --health-port $((8080 + n)) >"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
  wait_healthy "$name" "http://127.0.0.1:$((8080 + n))/healthz"
  echo "silo $n: silo port $((11110 + n)), gateway $((30000 + n)), health http://127.0.0.1:$((8080 + n))/healthz"
}

# Behind nginx on this host every client has nginx's address: the per-address cap would count
# them all as one client (docs/security.md), so it is off; cap per client at the proxy instead.
start_frontend() { # N
  local n=$1 name="frontend$1"
  alive "$name" && return
  nohup dotnet "$frontend_dll" --redis "127.0.0.1:$redis_port" --urls "http://127.0.0.1:$((8000 + n))" \
    --node-id "fe-$n" --Broker:MaxConnectionsPerIp=0 >"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
  wait_healthy "$name" "http://127.0.0.1:$((8000 + n))/healthz"
  echo "front-end $n: ws://127.0.0.1:$((8000 + n))/chat, server API http://127.0.0.1:$((8000 + n))/api/… (its own port: nginx does not forward /api)"
}

write_nginx_conf() {
  local upstreams=""
  for pidfile in "$dir"/frontend*.pid; do
    local n=${pidfile##*/frontend}; n=${n%.pid}
    upstreams+="    server 127.0.0.1:$((8000 + n));"$'\n'
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
  echo "nginx: ws://127.0.0.1:$nginx_port/chat (round-robin over the front-ends, no sticky sessions)"
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
    start_silo 1; start_silo 2
    start_frontend 1; start_frontend 2
    start_nginx
    ;;
  add-silo) start_silo "${2:?silo number}" ;;
  add-frontend) start_frontend "${2:?front-end number}"; start_nginx ;;
  status)
    for pidfile in "$dir"/*.pid; do
      [[ -e "$pidfile" ]] || continue
      name=$(basename "$pidfile" .pid)
      if alive "$name"; then echo "$name: running (pid $(cat "$pidfile"))"; else echo "$name: not running"; fi
    done
    ;;
  stop)
    # Front-ends first (their clients get 1012 and leave their rooms), then silos, then the rest.
    [[ -d "$dir" ]] || exit 0
    for pidfile in "$dir"/frontend*.pid; do [[ -e "$pidfile" ]] && stop_one "$(basename "$pidfile" .pid)"; done
    for pidfile in "$dir"/silo*.pid; do [[ -e "$pidfile" ]] && stop_one "$(basename "$pidfile" .pid)"; done
    if alive nginx; then nginx -p "$dir" -c "$dir/nginx.conf" -s quit || true; fi
    for _ in $(seq 1 50); do alive nginx || break; sleep 0.1; done
    rm -f "$dir/nginx.pid"
    if alive redis; then redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || stop_one redis; fi
    rm -f "$dir/redis.pid"
    echo "stopped"
    ;;
  *)
    sed -n '2,12p' "$0"; exit 2 ;;
esac
