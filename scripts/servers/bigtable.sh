#!/usr/bin/env bash
# Test server for the bigtable plugin: Google's Bigtable emulator
# (`cbtemulator`, in memory), on 127.0.0.1:8086.
#
# The emulator comes with the machine as the Debian package
# google-cloud-cli-bigtable-emulator, whose apt source is disabled: it cannot
# be installed from here, so a missing emulator is an error, not a skip.
#
# Usage: scripts/servers/bigtable.sh start|stop|status
set -euo pipefail
cd "$(dirname "$0")/../.."

HOST=127.0.0.1
PORT=${BIGTABLE_EMULATOR_PORT:-8086}
STATE=target/test-servers/bigtable
PIDFILE=$STATE/cbtemulator.pid
LOG=$STATE/cbtemulator.log

log() { echo "bigtable.sh: $*" >&2; }
# shellcheck source=../lib/servers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/servers.sh"

find_emulator() {
    if [ -n "${CBTEMULATOR:-}" ] && [ -x "$CBTEMULATOR" ]; then
        echo "$CBTEMULATOR"
        return 0
    fi
    if command -v cbtemulator >/dev/null 2>&1; then
        command -v cbtemulator
        return 0
    fi
    local path
    path=$(dpkg -L google-cloud-cli-bigtable-emulator 2>/dev/null | grep '/cbtemulator$' | head -n1 || true)
    if [ -n "$path" ] && [ -x "$path" ]; then
        echo "$path"
        return 0
    fi
    for path in /usr/lib/google-cloud-sdk/platform/bigtable-emulator/cbtemulator \
                /usr/share/google-cloud-sdk/platform/bigtable-emulator/cbtemulator; do
        if [ -x "$path" ]; then
            echo "$path"
            return 0
        fi
    done
    return 1
}

# Whether something accepts TCP connections on the port.
answers() {
    (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null
}

start() {
    already_up cbtemulator "$PIDFILE" "$HOST:$PORT" "bigtable emulator" -- answers && return 0
    local emulator
    if ! emulator=$(find_emulator); then
        log "ERROR: cbtemulator not found. It comes with the Debian package"
        log "google-cloud-cli-bigtable-emulator (not on PATH; set CBTEMULATOR=/path/to/cbtemulator"
        log "to point at another copy). The bigtable plugin's tests cannot run without it."
        return 1
    fi
    mkdir -p "$STATE"
    log "starting $emulator on $HOST:$PORT"
    start_daemon "$PIDFILE" "$LOG" -- "$emulator" -host "$HOST" -port "$PORT"
    await_daemon cbtemulator "$PIDFILE" "$LOG" 10 "$HOST:$PORT" -- answers
}

stop() {
    stop_pidfile cbtemulator "$PIDFILE"
}

status() {
    status_of "$PIDFILE" "$HOST:$PORT" -- answers
}

run_command "${1:-}"
