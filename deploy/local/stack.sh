#!/usr/bin/env bash
# Local infrastructure without Docker: Apache Kafka (KRaft, one node) from Maven
# Central jars, FerretDB v1 built from the Go module proxy, on PostgreSQL (Debian's
# package) or SQLite, and Dovecot (Debian's package) as the IMAP server whose
# mailboxes ingest reads.
#
#   deploy/local/stack.sh install   fetch the Kafka jars, build FerretDB, install Dovecot (and PostgreSQL)
#   deploy/local/stack.sh up        install if needed, start them all, wait until ready
#   deploy/local/stack.sh imap      install and start Dovecot only
#   deploy/local/stack.sh postgres  install and start PostgreSQL only (whatever the backend)
#   deploy/local/stack.sh down      stop them (data is kept)
#   deploy/local/stack.sh status    say what runs
#   deploy/local/stack.sh reset     stop them and delete their data
#
# Dovecot accepts any user name with the password $BUURTALERT_IMAP_PASSWORD (default
# demo-imap-password) on 127.0.0.1 only, without TLS: a development server.
#
# FerretDB's backend is $BUURTALERT_DB_BACKEND: postgresql (the default), which keeps the
# message path's lookups flat as data grows (`python -m bench.store`, docs/benchmarks.md),
# or sqlite, whose lookups scan. PostgreSQL runs
# as an unprivileged user (`postgres` when we are root), listens on 127.0.0.1 only
# ($BUURTALERT_POSTGRES_PORT, default 5433) and trusts local connections: a
# development server. Its data lives in $BUURTALERT_LOCAL_DIR/postgres.
#
# Every command can be run twice without harm. Data, logs and pid files live in
# $BUURTALERT_LOCAL_DIR (default: .local/ at the repository root, git-ignored).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
state=${BUURTALERT_LOCAL_DIR:-$root/.local}
kafka_port=${BUURTALERT_KAFKA_PORT:-9092}
controller_port=${BUURTALERT_KAFKA_CONTROLLER_PORT:-9093}
mongo_port=${BUURTALERT_MONGO_PORT:-27017}
kafka_heap=${BUURTALERT_KAFKA_HEAP:-768m}
imap_port=${BUURTALERT_IMAP_PORT:-10143}
imap_password=${BUURTALERT_IMAP_PASSWORD:-demo-imap-password}
backend=${BUURTALERT_DB_BACKEND:-postgresql}
pg_port=${BUURTALERT_POSTGRES_PORT:-5433}

kdir=$state/kafka
fdir=$state/ferretdb
ddir=$state/dovecot
pdir=$state/postgres

log() { printf '[stack] %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() { # name port pidfile logfile seconds
  local i
  for ((i = 0; i < $5 * 4; i++)); do
    if port_open "$2"; then return 0; fi
    if ! alive "$3"; then log "$1 exited while starting; last lines of $4:"; tail -n 30 "$4" >&2; return 1; fi
    sleep 0.25
  done
  log "$1 did not open port $2 within $5 s; see $4"; return 1
}

install_kafka() {
  if [ -f "$kdir/libs/.complete" ] && [ "$kdir/libs/.complete" -nt "$here/kafka/pom.xml" ]; then return; fi
  log "fetching Apache Kafka jars from Maven Central"
  rm -rf "$kdir/libs"; mkdir -p "$kdir/libs"
  mvn -q -B -f "$here/kafka/pom.xml" dependency:copy-dependencies -DoutputDirectory="$kdir/libs" >&2
  touch "$kdir/libs/.complete"
}

install_ferretdb() {
  if [ -x "$fdir/bin/ferretdb" ] && [ "$fdir/bin/ferretdb" -nt "$here/ferretdb/main.go" ] && [ "$fdir/bin/ferretdb" -nt "$here/ferretdb/go.sum" ]; then return; fi
  log "building FerretDB from the Go module proxy (about a minute the first time)"
  mkdir -p "$fdir/bin"
  (cd "$here/ferretdb" && go build -trimpath -o "$fdir/bin/ferretdb.tmp" . && mv "$fdir/bin/ferretdb.tmp" "$fdir/bin/ferretdb")
}

kafka_java() {
  java -Xms"$kafka_heap" -Xmx"$kafka_heap" -XX:+UseG1GC -Djava.awt.headless=true \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -Dorg.slf4j.simpleLogger.showDateTime=true \
    -cp "$kdir/libs/*" "$@"
}

start_kafka() {
  if alive "$kdir/kafka.pid" && port_open "$kafka_port"; then log "kafka already running on 127.0.0.1:$kafka_port"; return; fi
  if port_open "$kafka_port"; then log "port $kafka_port is taken by another process; set BUURTALERT_KAFKA_PORT"; return 1; fi
  mkdir -p "$kdir/data" "$kdir/logs"
  cat > "$kdir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$kafka_port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$kafka_port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$kdir/data
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
PROPS
  if [ ! -f "$kdir/data/meta.properties" ]; then
    kafka_java kafka.tools.StorageTool format --standalone --ignore-formatted \
      -t "$(kafka_java kafka.tools.StorageTool random-uuid)" -c "$kdir/server.properties" > "$kdir/logs/format.log" 2>&1 \
      || { cat "$kdir/logs/format.log" >&2; return 1; }
  fi
  log "starting kafka on 127.0.0.1:$kafka_port"
  nohup bash -c "exec java -Xms$kafka_heap -Xmx$kafka_heap -XX:+UseG1GC -Djava.awt.headless=true \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -Dorg.slf4j.simpleLogger.showDateTime=true \
    -cp '$kdir/libs/*' kafka.Kafka '$kdir/server.properties'" > "$kdir/logs/kafka.log" 2>&1 < /dev/null &
  echo $! > "$kdir/kafka.pid"
  wait_for kafka "$kafka_port" "$kdir/kafka.pid" "$kdir/logs/kafka.log" 120
}

pg_bin() { # the newest installed PostgreSQL's bin directory
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] && [ -x "$d/postgres" ] && echo "$d"
}

install_postgres() {
  if [ -n "$(pg_bin)" ]; then return; fi
  if [ "$(id -u)" != 0 ]; then log "PostgreSQL is missing: install Debian's postgresql (needs root)"; return 1; fi
  log "installing PostgreSQL (Debian's postgresql)"
  (export DEBIAN_FRONTEND=noninteractive
   apt-get install -y -qq --no-install-recommends postgresql > /dev/null 2>&1 \
     || { apt-get update -qq > /dev/null && apt-get install -y -qq --no-install-recommends postgresql > /dev/null; })
}

as_pg_user() { # run a command as the unprivileged user that owns the cluster
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  local bin; bin=$(pg_bin)
  if [ -f "$pdir/data/postmaster.pid" ] && as_pg_user "$bin/pg_ctl" -D "$pdir/data" status > /dev/null 2>&1 \
    && port_open "$pg_port"; then
    log "postgresql already running on 127.0.0.1:$pg_port"; prepare_postgres "$bin"; return
  fi
  if port_open "$pg_port"; then log "port $pg_port is taken by another process; set BUURTALERT_POSTGRES_PORT"; return 1; fi
  mkdir -p "$pdir/data" "$pdir/run" "$pdir/logs"
  if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$pdir"; fi
  if [ ! -f "$pdir/data/PG_VERSION" ]; then
    as_pg_user "$bin/initdb" -D "$pdir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
      > "$pdir/logs/initdb.log" 2>&1 || { cat "$pdir/logs/initdb.log" >&2; return 1; }
  fi
  log "starting postgresql on 127.0.0.1:$pg_port"
  # A development server: no fsync (a crash of the machine may lose recent commits; the
  # same trade as FerretDB's SQLite with synchronous=NORMAL).
  as_pg_user "$bin/pg_ctl" -D "$pdir/data" -l "$pdir/logs/postgres.log" -w -t 60 start -o \
    "-c listen_addresses=127.0.0.1 -p $pg_port -c unix_socket_directories=$pdir/run -c fsync=off \
     -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=256MB -c max_connections=200" \
    > /dev/null || { tail -n 30 "$pdir/logs/postgres.log" >&2; return 1; }
  prepare_postgres "$bin"
}

prepare_postgres() { # bin: FerretDB's database, and the GIN twins of its indexes (see the SQL file)
  local bin=$1
  if ! as_pg_user "$bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'ferretdb'" | grep -q 1; then
    as_pg_user "$bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres ferretdb
  fi
  as_pg_user "$bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d ferretdb -q -v ON_ERROR_STOP=1 \
    -c "SET client_min_messages = warning" -f - < "$here/postgres/gin-twins.sql" > /dev/null
}

stop_postgres() {
  local bin; bin=$(pg_bin) || return 0
  if [ -f "$pdir/data/postmaster.pid" ]; then
    log "stopping postgresql"
    as_pg_user "$bin/pg_ctl" -D "$pdir/data" -m fast -w stop > /dev/null 2>&1 || true
  fi
}

start_ferretdb() {
  if alive "$fdir/ferretdb.pid" && port_open "$mongo_port"; then log "ferretdb already running on 127.0.0.1:$mongo_port"; return; fi
  if port_open "$mongo_port"; then log "port $mongo_port is taken by another process; set BUURTALERT_MONGO_PORT"; return 1; fi
  mkdir -p "$fdir/data" "$fdir/logs"
  local args=(-handler sqlite -sqlite-dir "$fdir/data/")
  case "$backend" in
    sqlite) ;;
    postgresql) start_postgres; args=(-handler postgresql -postgresql-url "postgres://postgres@127.0.0.1:$pg_port/ferretdb?pool_max_conns=90") ;;
    *) log "BUURTALERT_DB_BACKEND must be postgresql or sqlite, not $backend"; return 1 ;;
  esac
  log "starting ferretdb ($backend) on 127.0.0.1:$mongo_port"
  nohup "$fdir/bin/ferretdb" -listen-addr "127.0.0.1:$mongo_port" "${args[@]}" \
    > "$fdir/logs/ferretdb.log" 2>&1 < /dev/null &
  echo $! > "$fdir/ferretdb.pid"
  wait_for ferretdb "$mongo_port" "$fdir/ferretdb.pid" "$fdir/logs/ferretdb.log" 30
}

install_dovecot() {
  if command -v dovecot > /dev/null || [ -x /usr/sbin/dovecot ]; then return; fi
  if [ "$(id -u)" != 0 ]; then log "Dovecot is missing: install Debian's dovecot-imapd (needs root)"; return 1; fi
  log "installing Dovecot (Debian's dovecot-imapd)"
  (export DEBIAN_FRONTEND=noninteractive
   apt-get install -y -qq --no-install-recommends dovecot-imapd > /dev/null 2>&1 \
     || { apt-get update -qq > /dev/null && apt-get install -y -qq --no-install-recommends dovecot-imapd > /dev/null; })
}

start_dovecot() {
  if port_open "$imap_port" && [ -f "$ddir/run/master.pid" ] && kill -0 "$(cat "$ddir/run/master.pid")" 2>/dev/null; then
    log "dovecot already running on 127.0.0.1:$imap_port"; return
  fi
  if port_open "$imap_port"; then log "port $imap_port is taken by another process; set BUURTALERT_IMAP_PORT"; return 1; fi
  local user group
  if [ "$(id -u)" = 0 ]; then user=dovecot; group=dovecot; else user=$(id -un); group=$(id -gn); fi
  mkdir -p "$ddir/run" "$ddir/mail" "$ddir/logs"
  chown "$user:$group" "$ddir/mail"
  cat > "$ddir/dovecot.conf" <<CONF
base_dir = $ddir/run
state_dir = $ddir/run/state
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = $ddir/logs/dovecot.log
mail_location = maildir:$ddir/mail/%u
first_valid_uid = 1
first_valid_gid = 1
$( [ "$(id -u)" = 0 ] || printf 'default_login_user = %s\ndefault_internal_user = %s\ndefault_internal_group = %s\n' "$user" "$user" "$group")
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap_port
  }
  inet_listener imaps {
    port = 0
  }
}
service stats {
  unix_listener stats-reader {
    mode = 0666
  }
  unix_listener stats-writer {
    mode = 0666
  }
}
passdb {
  driver = static
  args = password=$imap_password
}
userdb {
  driver = static
  args = uid=$user gid=$group home=$ddir/mail/%u
}
CONF
  log "starting dovecot on 127.0.0.1:$imap_port"
  /usr/sbin/dovecot -c "$ddir/dovecot.conf"
  for _ in $(seq 1 40); do port_open "$imap_port" && return 0; sleep 0.25; done
  log "dovecot did not open port $imap_port; see $ddir/logs/dovecot.log"; tail -n 20 "$ddir/logs/dovecot.log" >&2; return 1
}

stop_dovecot() {
  if [ -f "$ddir/dovecot.conf" ] && [ -f "$ddir/run/master.pid" ] && kill -0 "$(cat "$ddir/run/master.pid")" 2>/dev/null; then
    log "stopping dovecot"
    /usr/sbin/doveadm -c "$ddir/dovecot.conf" stop 2>/dev/null || kill "$(cat "$ddir/run/master.pid")" 2>/dev/null || true
  fi
}

stop_one() { # name pidfile
  if alive "$2"; then
    local pid; pid=$(cat "$2")
    log "stopping $1 (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$2"
}

case "${1:-up}" in
  install) install_kafka; install_ferretdb; install_dovecot; [ "$backend" = sqlite ] || install_postgres ;;
  up)
    install_kafka; install_ferretdb; install_dovecot; [ "$backend" = sqlite ] || install_postgres
    start_ferretdb; start_kafka; start_dovecot
    echo "KAFKA=127.0.0.1:$kafka_port MONGO=mongodb://127.0.0.1:$mongo_port/ IMAP=127.0.0.1:$imap_port" ;;
  imap) install_dovecot; start_dovecot ;;
  postgres) install_postgres; start_postgres; echo "POSTGRES=postgres://postgres@127.0.0.1:$pg_port/" ;;
  down) stop_one kafka "$kdir/kafka.pid"; stop_one ferretdb "$fdir/ferretdb.pid"; stop_postgres; stop_dovecot ;;
  status)
    alive "$kdir/kafka.pid" && echo "kafka: running on 127.0.0.1:$kafka_port" || echo "kafka: stopped"
    alive "$fdir/ferretdb.pid" && echo "ferretdb: running on 127.0.0.1:$mongo_port" || echo "ferretdb: stopped"
    [ -f "$pdir/data/postmaster.pid" ] && as_pg_user "$(pg_bin)/pg_ctl" -D "$pdir/data" status > /dev/null 2>&1 \
      && echo "postgresql: running on 127.0.0.1:$pg_port" || echo "postgresql: stopped"
    alive "$ddir/run/master.pid" && echo "dovecot: running on 127.0.0.1:$imap_port" || echo "dovecot: stopped" ;;
  reset) "$0" down; rm -rf "$kdir/data" "$kdir/logs" "$fdir/data" "$fdir/logs" "$ddir" "$pdir" ;;
  *) echo "usage: $0 install|up|imap|postgres|down|status|reset" >&2; exit 64 ;;
esac
