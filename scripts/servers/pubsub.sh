#!/usr/bin/env bash
# Test server for the pubsub consumer plugin: Google's Pub/Sub emulator
# (Java 17, in memory), REST and gRPC on 127.0.0.1:8085.
#
# The emulator is the Debian package google-cloud-cli-pubsub-emulator; it is
# installed with apt-get when missing (needs root). A missing emulator is an
# error, never a skip.
#
# Usage: scripts/servers/pubsub.sh start|stop|status
set -euo pipefail
cd "$(dirname "$0")/../.."

HOST=127.0.0.1
PORT=${PUBSUB_EMULATOR_PORT:-8085}
STATE=target/test-servers/pubsub
PIDFILE=$STATE/pubsub-emulator.pid
LOG=$STATE/pubsub-emulator.log
PACKAGE=google-cloud-cli-pubsub-emulator
# The JVM would otherwise size its heap from the machine's memory; the test
# machines are shared.
JAVA_OPTS=${PUBSUB_EMULATOR_JAVA_OPTS:--Xms64m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1}

log() { echo "pubsub.sh: $*" >&2; }
# shellcheck source=../lib/servers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/servers.sh"

find_emulator() {
    local path
    path=$(dpkg -L "$PACKAGE" 2>/dev/null | grep '/bin/cloud-pubsub-emulator$' | head -n1 || true)
    if [ -n "$path" ] && [ -x "$path" ]; then
        echo "$path"
        return 0
    fi
    return 1
}

ensure_installed() {
    find_emulator >/dev/null && return 0
    log "installing the Debian package $PACKAGE"
    if [ "$(id -u)" != 0 ]; then
        log "ERROR: $PACKAGE is not installed and installing it needs root (apt-get install $PACKAGE)"
        return 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$PACKAGE" >&2 \
        || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$PACKAGE" >&2; } \
        || { log "ERROR: apt-get could not install $PACKAGE"; return 1; }
    find_emulator >/dev/null || { log "ERROR: $PACKAGE installed but bin/cloud-pubsub-emulator not found"; return 1; }
}

# The emulator answers its REST API (the gRPC port opens a little earlier).
answers() {
    curl -fsS -m 2 "http://$HOST:$PORT/v1/projects/heroic-probe/topics" >/dev/null 2>&1
}

start() {
    already_up "pubsub emulator" "$PIDFILE" "$HOST:$PORT" "pubsub emulator" -- answers && return 0
    ensure_installed
    local emulator
    emulator=$(find_emulator)
    mkdir -p "$STATE"
    log "starting $emulator on $HOST:$PORT"
    # The launcher execs java, so the pid recorded is the JVM's.
    JAVA_OPTS="$JAVA_OPTS" start_daemon "$PIDFILE" "$LOG" -- "$emulator" --host="$HOST" --port="$PORT"
    await_daemon "pubsub emulator" "$PIDFILE" "$LOG" 30 "$HOST:$PORT" -- answers
}

stop() {
    stop_pidfile pubsub-emulator "$PIDFILE"
}

status() {
    status_of "$PIDFILE" "$HOST:$PORT" -- answers
}

run_command "${1:-}"
