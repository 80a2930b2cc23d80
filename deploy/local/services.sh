#!/usr/bin/env bash
# Start or stop buurtalert's services and the development mailbox as background
# processes, with logs in $BUURTALERT_LOCAL_DIR/logs (default .local/logs).
#
#   deploy/local/services.sh up | down | status
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
state=${BUURTALERT_LOCAL_DIR:-$root/.local}
bin=$root/.venv/bin
services=(channels routing moderation ingest)
mkdir -p "$state/logs" "$state/run"

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() { # name command...
  local name=$1; shift
  if alive "$state/run/$name.pid"; then echo "[services] $name already running" >&2; return; fi
  (cd "$root" && nohup "$@" >> "$state/logs/$name.log" 2>&1 < /dev/null & echo $! > "$state/run/$name.pid")
  echo "[services] started $name (log: $state/logs/$name.log)" >&2
}

stop() {
  local pidfile=$state/run/$1.pid
  if alive "$pidfile"; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    for _ in $(seq 1 60); do alive "$pidfile" || break; sleep 0.25; done
    alive "$pidfile" && kill -9 "$(cat "$pidfile")" 2>/dev/null || true
    echo "[services] stopped $1" >&2
  fi
  rm -f "$pidfile"
}

case "${1:-up}" in
  up)
    start dev-mailbox "$bin/buurtalert" channels dev-mailbox
    for s in "${services[@]}"; do start "$s" "$bin/buurtalert" run "$s"; done
    for _ in $(seq 1 120); do
      if curl -fsS "http://127.0.0.1:${BUURTALERT_HTTP_PORT:-8080}/health" > /dev/null 2>&1; then exit 0; fi
      sleep 0.5
    done
    echo "[services] ingest did not answer on /health; see $state/logs/ingest.log" >&2; exit 1 ;;
  down) for s in ingest "${services[@]}" dev-mailbox; do stop "$s"; done ;;
  status) for s in dev-mailbox "${services[@]}"; do
      alive "$state/run/$s.pid" && echo "$s: running" || echo "$s: stopped"; done ;;
  *) echo "usage: $0 up|down|status" >&2; exit 64 ;;
esac
