#!/bin/bash
# A throwaway PostgreSQL 15 cluster for tests, the demo and benchmarks, as root.
#   scripts/pg.sh start DIR PORT   create and start; prints the DSN (the only stdout line)
#   scripts/pg.sh stop DIR         fast stop (nothing if not running)
#   scripts/pg.sh pause DIR        stop, keeping the data
#   scripts/pg.sh resume DIR       start again on the same port
#   scripts/pg.sh restart DIR      pause + resume
# DIR must be under /tmp (postgres must be able to traverse it). PG_DB names the database
# (default testdb). PG_DURABLE=1 keeps fsync and synchronous commit on (benchmarks); by default
# they are off, which is fine for throwaway test data.
set -euo pipefail
pgbin=/usr/lib/postgresql/15/bin

usage() { echo "usage: $0 start DIR PORT | stop DIR | pause DIR | resume DIR | restart DIR" >&2; exit 2; }
[[ $# -ge 2 ]] || usage
verb=$1
dir=$2

show_log() { [[ -f $dir/pg.log ]] && tail -n 20 "$dir/pg.log" >&2; return 0; }

start_server() {
  local port
  port=$(cat "$dir/port")
  local options="-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300"
  if [[ $(cat "$dir/durable") != 1 ]]; then
    options+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  fi
  if ! runuser -u postgres -- "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/pg.log" -w -t 30 \
      -o "$options" start >/dev/null; then
    echo "pg.sh: PostgreSQL did not start on port $port; its log says:" >&2
    show_log
    exit 1
  fi
}

stop_server() {
  if [[ -f $dir/data/postmaster.pid ]]; then
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null
  fi
}

case $verb in
  start)
    [[ $# -eq 3 ]] || usage
    port=$3
    if ss -ltnH "sport = :$port" | grep -q .; then
      echo "pg.sh: port $port is already in use" >&2
      exit 1
    fi
    mkdir -p "$dir"
    chown postgres:postgres "$dir"
    chmod 700 "$dir"
    echo "$port" >"$dir/port"
    echo "${PG_DURABLE:-0}" >"$dir/durable"
    if ! runuser -u postgres -- "$pgbin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
        --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1; then
      echo "pg.sh: initdb failed:" >&2
      cat "$dir/initdb.log" >&2
      exit 1
    fi
    start_server
    db=${PG_DB:-testdb}
    runuser -u postgres -- "$pgbin/createdb" -h 127.0.0.1 -p "$port" "$db"
    echo "postgresql://postgres@127.0.0.1:$port/$db"
    ;;
  stop | pause)
    [[ -d $dir/data ]] || exit 0
    stop_server
    ;;
  resume)
    start_server
    ;;
  restart)
    stop_server
    start_server
    ;;
  *)
    usage
    ;;
esac
