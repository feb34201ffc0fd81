#!/usr/bin/env bash
# Side-by-side benchmark of heroic (local plugin) and VictoriaMetrics on this
# machine: HTTP ingest rate, bytes per point on disk, and the latency of
# summing every series into 1-minute buckets. See docs/performance.md.
#
#   scripts/bench/vs-victoriametrics.sh              # 1,000 series × 1 day
#   SERIES=100 RUNS=5 scripts/bench/vs-victoriametrics.sh
#   NO_BUILD=1 HEROIC_BIN_DIR=/tmp/old scripts/bench/vs-victoriametrics.sh
#
# Installs victoria-metrics (Debian package, needs root) when missing, builds
# the release binaries, runs both servers on 127.0.0.1 with fresh temporary
# data directories and removes them at the end (KEEP=1 keeps them).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SERIES=${SERIES:-1000}
POINTS=${POINTS:-8640}
CONNS=${CONNS:-4}
RUNS=${RUNS:-20}
HEROIC_PORT=${HEROIC_PORT:-18480}
VM_PORT=${VM_PORT:-18428}

log() { echo "[bench] $*" >&2; }

if ! command -v victoria-metrics >/dev/null; then
    log "installing victoria-metrics"
    apt-get install -y victoria-metrics >/dev/null
fi

if [ "${NO_BUILD:-0}" != 1 ]; then
    log "building release binaries (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    (cd "$ROOT" && cargo build --release -q -p heroic -p heroic-plugin-local -p heroic-bench)
fi
METER=$CARGO_TARGET_DIR/release/http-compare
# HEROIC_BIN_DIR: run another build of heroic and its plugin (a baseline).
BIN=${HEROIC_BIN_DIR:-$CARGO_TARGET_DIR/release}

WORK=$(mktemp -d /tmp/heroic-vs-vm.XXXXXX)
OUT=$WORK/figures.tsv
HEROIC_PID= VM_PID=
cleanup() {
    for pid in $HEROIC_PID $VM_PID; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "${KEEP:-0}" = 1 ]; then log "data kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# One local backend per role, each in its own directory.
{
    printf '[server]\nlisten = "127.0.0.1:%s"\n[plugins]\ndirs = ["%s"]\n' "$HEROIC_PORT" "$BIN"
    for role in metrics metadata suggest; do
        printf '[[%s]]\nplugin = "local"\n[%s.config]\ndata_dir = "%s"\n' "$role" "$role" "$WORK/heroic/$role"
    done
} >"$WORK/heroic.toml"

wait_http() { # URL
    for _ in $(seq 1 300); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
    log "no answer from $1"; return 1
}
start_heroic() {
    RUST_LOG=warn "$BIN/heroic" --config "$WORK/heroic.toml" >>"$WORK/heroic.log" 2>&1 &
    HEROIC_PID=$!
    wait_http "http://127.0.0.1:$HEROIC_PORT/status"
}
stop_heroic() { # SIGTERM: the node drains, then the local plugin flushes its head to segments
    kill -TERM "$HEROIC_PID"; wait "$HEROIC_PID" || true; HEROIC_PID=
}

log "load: $(uptime)"
start_heroic
victoria-metrics -httpListenAddr "127.0.0.1:$VM_PORT" -storageDataPath "$WORK/vm" \
    -loggerLevel ERROR >"$WORK/vm.log" 2>&1 &
VM_PID=$!
wait_http "http://127.0.0.1:$VM_PORT/health"

COMMON=(--series "$SERIES" --points "$POINTS" --out "$OUT")
log "ingest: $SERIES series × $POINTS points, $POINTS points per request, $CONNS connections"
"$METER" ingest --target heroic --url "http://127.0.0.1:$HEROIC_PORT" --pid "$HEROIC_PID" --conns "$CONNS" "${COMMON[@]}"
"$METER" ingest --target vm --url "http://127.0.0.1:$VM_PORT" --pid "$VM_PID" --conns "$CONNS" "${COMMON[@]}"

log "flushing both to disk"
# VictoriaMetrics: in-memory parts to disk, then merge every partition.
curl -sf "http://127.0.0.1:$VM_PORT/internal/force_flush" >/dev/null
curl -sf "http://127.0.0.1:$VM_PORT/internal/force_merge" >/dev/null
# heroic: a restart flushes the head (shutdown) and reopens the segments.
stop_heroic
start_heroic
# Background merges end when the size stops changing.
prev=-1
while :; do
    sleep 2
    size=$(du -sb "$WORK/vm/data" | cut -f1)
    [ "$size" = "$prev" ] && break
    prev=$size
done
total=$((SERIES * POINTS))
# heroic: everything it keeps (segments, series catalog, metadata, suggest).
# VictoriaMetrics: data and index; not cache/, which it rebuilds at will
# and writes at shutdown.
for t in heroic vm; do
    if [ "$t" = vm ]; then dirs=("$WORK/vm/data" "$WORK/vm/indexdb"); else dirs=("$WORK/heroic"); fi
    bytes=$(du -scb "${dirs[@]}" | tail -1 | cut -f1)
    printf '%s\tbytes_per_point\t%s\n' "$t" "$(awk -v b="$bytes" -v n="$total" 'BEGIN { printf "%.4f", b / n }')" >>"$OUT"
    log "$t: $bytes bytes on disk"
done

log "query: sum of every series into 1-minute buckets over the range, $RUNS warm runs"
"$METER" query --target heroic --url "http://127.0.0.1:$HEROIC_PORT" --pid "$HEROIC_PID" --runs "$RUNS" "${COMMON[@]}"
"$METER" query --target vm --url "http://127.0.0.1:$VM_PORT" --pid "$VM_PID" --runs "$RUNS" "${COMMON[@]}"

log "load: $(uptime)"
"$METER" report --out "$OUT"
