#!/usr/bin/env bash
# Start or stop buurtalert's services, the development mailbox and the Graph API
# emulator as background processes, with logs in $BUURTALERT_LOCAL_DIR/logs
# (default .local/logs).
#
#   deploy/local/services.sh up | down | status
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
state=${BUURTALERT_LOCAL_DIR:-$root/.local}
bin=$root/.venv/bin
http_port=${BUURTALERT_HTTP_PORT:-8080}
# Each service serves /health, /ready and /metrics on a port of its own; review serves the console.
declare -A ports=(
  [ingest]=$http_port
  [moderation]=${BUURTALERT_MODERATION_HTTP_PORT:-8081}
  [routing]=${BUURTALERT_ROUTING_HTTP_PORT:-8082}
  [channels]=${BUURTALERT_CHANNELS_HTTP_PORT:-8083}
  [review]=${BUURTALERT_REVIEW_PORT:-8084}
)
services=(channels routing moderation ingest review)
mkdir -p "$state/logs" "$state/run"
cd "$root"

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() { # name port-it-will-open-or-empty command...
  local name=$1 port=$2; shift 2
  if alive "$state/run/$name.pid"; then echo "[services] $name already running" >&2; return; fi
  if [ -n "$port" ] && port_open "$port"; then
    echo "[services] cannot start $name: port $port is taken by another process" >&2; return 1
  fi
  [ -f "$state/logs/$name.log" ] && mv "$state/logs/$name.log" "$state/logs/$name.log.1"  # keep the previous run's
  nohup "$@" > "$state/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$state/run/$name.pid"
  echo "[services] started $name (log: $state/logs/$name.log)" >&2
}

stop() {
  local pidfile=$state/run/$1.pid
  if alive "$pidfile"; then
    local pid; pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
    echo "[services] stopped $1" >&2
  fi
  rm -f "$pidfile"
}

wait_ready() { # name port
  for _ in $(seq 1 120); do
    if port_open "$2"; then return 0; fi
    if ! alive "$state/run/$1.pid"; then
      echo "[services] $1 exited; last lines of $state/logs/$1.log:" >&2; tail -n 20 "$state/logs/$1.log" >&2; return 1
    fi
    sleep 0.5
  done
  echo "[services] $1 did not open port $2; see $state/logs/$1.log" >&2; return 1
}

wait_started() { # name: until the service's log says its consumers run (moderation loads deduce first)
  for _ in $(seq 1 240); do
    if grep -q "started successfully\|Application startup complete" "$state/logs/$1.log" 2>/dev/null; then return 0; fi
    if ! alive "$state/run/$1.pid"; then
      echo "[services] $1 exited; last lines of $state/logs/$1.log:" >&2; tail -n 20 "$state/logs/$1.log" >&2; return 1
    fi
    sleep 0.5
  done
  echo "[services] $1 did not start within 120 s; see $state/logs/$1.log" >&2; return 1
}

case "${1:-up}" in
  up)
    start dev-mailbox 8025 "$bin/buurtalert" dev-mailbox --smtp-port 2525 --http-port 8025
    start graph-emulator 8090 "$bin/buurtalert" graph-emulator --port 8090 \
      --directory deploy/demo/weert/directory.yaml --directory deploy/demo/bocholt/directory.yaml
    for s in "${services[@]}"; do
      BUURTALERT_HTTP_PORT=${ports[$s]} start "$s" "${ports[$s]}" "$bin/buurtalert" run "$s"
    done
    wait_ready dev-mailbox 8025
    wait_ready graph-emulator 8090
    wait_ready ingest "$http_port"
    wait_ready review "${ports[review]}"
    for s in "${services[@]}"; do wait_started "$s"; done ;;
  down) for s in review ingest "${services[@]}" dev-mailbox graph-emulator; do stop "$s"; done ;;
  status) for s in dev-mailbox graph-emulator "${services[@]}"; do
      if alive "$state/run/$s.pid"; then echo "$s: running"; else echo "$s: stopped"; fi; done ;;
  *) echo "usage: $0 up|down|status" >&2; exit 64 ;;
esac
