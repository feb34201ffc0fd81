#!/usr/bin/env bash
# The node's memory under concurrent raw reads, with the default config:
# 16 series × 3,000,000 points written, then 16 clients each reading one
# whole series at once (see docs/reliability.md for the figures).
#
#   scripts/bench/concurrent-reads.sh
#   SERIES=4 POINTS=1000000 CLIENTS=8 scripts/bench/concurrent-reads.sh
#
# Builds the release binaries, runs the node on 127.0.0.1 with a fresh
# temporary data directory and removes it at the end (KEEP=1 keeps it).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
PORT=${PORT:-18490}

if [ "${NO_BUILD:-0}" != 1 ]; then
    echo "[bench] building release binaries" >&2
    (cd "$ROOT" && cargo build --release -q -p heroic -p heroic-plugin-local)
fi
BIN=$CARGO_TARGET_DIR/release

WORK=$(mktemp -d /tmp/heroic-reads.XXXXXX)
PID=
cleanup() {
    [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    if [ "${KEEP:-0}" = 1 ]; then echo "[bench] kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

{
    printf '[server]\nlisten = "127.0.0.1:%s"\n[plugins]\ndirs = ["%s"]\n' "$PORT" "$BIN"
    for role in metrics metadata suggest; do
        printf '[[%s]]\nplugin = "local"\n[%s.config]\ndata_dir = "%s"\n' "$role" "$role" "$WORK/data/$role"
    done
} >"$WORK/heroic.toml"

"$BIN/heroic" --config "$WORK/heroic.toml" 2>"$WORK/heroic.log" &
PID=$!
for _ in $(seq 1 300); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/status" && break; sleep 0.1; done

python3 "$ROOT/scripts/bench/concurrent_reads.py" --url "http://127.0.0.1:$PORT" --pid "$PID" \
    --series "${SERIES:-16}" --points "${POINTS:-3000000}" --clients "${CLIENTS:-16}"
