#!/bin/bash
# A throwaway PostgreSQL 15 cluster for tests, the demo and benchmarks.
#   scripts/pg.sh start DIR PORT   create a cluster in DIR/data and start it on 127.0.0.1:PORT;
#                                  prints the DSN postgresql://postgres@127.0.0.1:PORT/DB, the
#                                  only line it writes to stdout
#   scripts/pg.sh stop DIR         fast stop; nothing to do when it is not running
#   scripts/pg.sh pause DIR        the same as stop: the data stays for resume
#   scripts/pg.sh resume DIR       start it again on the port recorded in DIR/port
#   scripts/pg.sh restart DIR      stop, then start on the same port
# Run as root, the server runs as the postgres user (runuser), so DIR must be a place postgres can
# reach: somewhere under /tmp (DIR is created and given to postgres). Run as another user, the
# server runs as that user. Authentication is trust; the unix socket lives in DIR.
# Environment: PG_DB names the database to create (default testdb). PG_DURABLE=1 keeps fsync,
# synchronous_commit and full_page_writes on (benchmarks); by default they are off, which is fine
# for throwaway data and much faster. PG_BIN overrides /usr/lib/postgresql/15/bin.
# Exit status: 0 on success, 2 on usage errors, 1 otherwise, with the reason (and the tail of
# DIR/pg.log when the server was involved) on stderr.
set -Eeuo pipefail
pgbin=${PG_BIN:-/usr/lib/postgresql/15/bin}

usage() {
  echo "usage: $0 start DIR PORT | stop DIR | pause DIR | resume DIR | restart DIR" >&2
  exit 2
}
[[ $# -ge 2 ]] || usage
verb=$1
dir=$(realpath -m -- "$2")

show_log() {
  if [[ -s $dir/pg.log ]]; then
    echo "pg.sh: last lines of $dir/pg.log:" >&2
    tail -n 20 "$dir/pg.log" >&2
  fi
}
die() {  # a failure before the server was involved
  echo "pg.sh: $*" >&2
  exit 1
}
fail() {  # a failure where the server log may say why
  echo "pg.sh: $*" >&2
  show_log
  exit 1
}
# Any command that fails unexpectedly still says what failed and shows the server log.
trap 'fail "$verb $dir: command failed (line $LINENO): $BASH_COMMAND"' ERR

as_pg() {
  if [[ $EUID -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

port_in_use() { [[ -n $(ss -ltnH "sport = :$1") ]]; }

running() { [[ -d $dir/data ]] && as_pg "$pgbin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; }

start_server() {
  [[ -f $dir/port && -d $dir/data ]] || die "$dir holds no cluster: use 'start DIR PORT' first"
  local port
  port=$(<"$dir/port")
  if running; then
    return 0
  fi
  if port_in_use "$port"; then
    die "port $port is already in use (ss -ltn shows a listener); pick another port"
  fi
  if ! as_pg "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/pg.log" -w -t 60 start >/dev/null; then
    fail "PostgreSQL did not start on 127.0.0.1:$port"
  fi
}

stop_server() {
  if running; then
    as_pg "$pgbin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null ||
      fail "PostgreSQL in $dir did not stop"
  fi
}

case $verb in
  start)
    [[ $# -eq 3 ]] || usage
    port=$3
    if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
      die "bad port: $port"
    fi
    [[ $dir =~ ^[A-Za-z0-9_./+-]+$ ]] ||
      die "DIR may hold only letters, digits and _./+- (it goes into postgresql.conf): $dir"
    # A unix socket path is at most 107 bytes.
    ((${#dir} + 20 <= 107)) || die "DIR is too long for a unix socket path: $dir"
    if [[ -e $dir/data ]]; then
      die "$dir/data exists already: use 'resume', or 'stop' and remove $dir"
    fi
    if port_in_use "$port"; then
      die "port $port is already in use (ss -ltn shows a listener); pick another port"
    fi
    mkdir -p "$dir"
    if [[ $EUID -eq 0 ]]; then
      chown postgres:postgres "$dir"
      as_pg test -w "$dir" -a -x "$dir" ||
        die "the postgres user cannot reach $dir: use a directory under /tmp"
    fi
    chmod 700 "$dir"
    echo "$port" >"$dir/port"
    if ! as_pg "$pgbin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
        --no-sync >"$dir/initdb.log" 2>&1; then
      cat "$dir/initdb.log" >&2
      fail "initdb failed in $dir/data"
    fi
    {
      echo "# Added by scripts/pg.sh"
      echo "listen_addresses = '127.0.0.1'"
      echo "port = $port"
      echo "unix_socket_directories = '$dir'"
      echo "max_connections = 300"
      if [[ ${PG_DURABLE:-0} != 1 ]]; then
        echo "fsync = off"
        echo "synchronous_commit = off"
        echo "full_page_writes = off"
      fi
    } >>"$dir/data/postgresql.conf"
    start_server
    db=${PG_DB:-testdb}
    if [[ $db != postgres ]] && ! as_pg "$pgbin/createdb" -h 127.0.0.1 -p "$port" -U postgres \
        "$db" 2>"$dir/createdb.log"; then
      cat "$dir/createdb.log" >&2
      show_log
      stop_server
      echo "pg.sh: createdb $db failed; the server was stopped" >&2
      exit 1
    fi
    echo "postgresql://postgres@127.0.0.1:$port/$db"
    ;;
  stop | pause)
    [[ $# -eq 2 ]] || usage
    stop_server
    ;;
  resume)
    [[ $# -eq 2 ]] || usage
    start_server
    ;;
  restart)
    [[ $# -eq 2 ]] || usage
    stop_server
    start_server
    ;;
  *)
    usage
    ;;
esac
