#!/usr/bin/env bash
# Side-by-side benchmark of heroic (local plugin) and VictoriaMetrics on this
# machine: HTTP ingest rate and CPU, bytes per point on disk 30 s after
# ingest and after a flush, peak memory, and the latency of six queries
# (raw, sum, average by host, max of a tenth over the last hour, series
# count, and PromQL sum(rate(m[5m]))), each answer checked against the
# data. The PromQL query is also asked of a real Prometheus (Debian's
# `prometheus`) given the same data by promtool's backfill, whose answer
# must equal heroic's. See docs/performance.md.
#
#   scripts/bench/vs-victoriametrics.sh              # 1,000 series × 1 day
#   SERIES=10000 POINTS=864 scripts/bench/vs-victoriametrics.sh
#   SERIES=100 RUNS=5 QUERIES=sum,raw scripts/bench/vs-victoriametrics.sh
#   NO_BUILD=1 HEROIC_BIN_DIR=/tmp/old scripts/bench/vs-victoriametrics.sh
#   METRICS_CONFIG='block_cache_mb = 384' scripts/bench/vs-victoriametrics.sh
#   PROTOCOL=remote-write scripts/bench/vs-victoriametrics.sh   # Prometheus remote-write to both
#
# METRICS_CONFIG: TOML lines added to the metric backend's config (the
# local plugin's keys, plugins/local/README.md), to measure a setting.
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
# json: each server's own JSON write (heroic /write, VictoriaMetrics
# /api/v1/import); remote-write: Prometheus remote-write 1.0 to both.
PROTOCOL=${PROTOCOL:-json}
RUNS=${RUNS:-20}
QUERIES=${QUERIES:-raw,sum,avg_by_host,max_db_hour,count_prefix,promql_rate}
SETTLE=${SETTLE:-30}
HEROIC_PORT=${HEROIC_PORT:-18480}
VM_PORT=${VM_PORT:-18428}
PROM_PORT=${PROM_PORT:-18490}

log() { echo "[bench] $*" >&2; }

if ! command -v victoria-metrics >/dev/null; then
    log "installing victoria-metrics"
    apt-get install -y victoria-metrics >/dev/null
fi
case ",$QUERIES," in *,promql_rate,*) PROMQL=1 ;; *) PROMQL=0 ;; esac
if [ "$PROMQL" = 1 ] && ! command -v prometheus >/dev/null; then
    log "installing prometheus"
    apt-get install -y prometheus >/dev/null
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
HEROIC_PID= VM_PID= PROM_PID=
cleanup() {
    for pid in $HEROIC_PID $VM_PID $PROM_PID; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "${KEEP:-0}" = 1 ]; then log "data kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# The local backends as examples/local.toml sets them up: metadata and
# suggest share one registry directory.
{
    printf '[server]\nlisten = "127.0.0.1:%s"\n[plugins]\ndirs = ["%s"]\n' "$HEROIC_PORT" "$BIN"
    for role in metrics metadata suggest; do
        dir=$role
        [ "$role" = suggest ] && dir=metadata
        printf '[[%s]]\nplugin = "local"\n[%s.config]\ndata_dir = "%s"\n' "$role" "$role" "$WORK/heroic/$dir"
        if [ "$role" = metrics ] && [ -n "${METRICS_CONFIG:-}" ]; then printf '%s\n' "$METRICS_CONFIG"; fi
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
log "ingest ($PROTOCOL): $SERIES series × $POINTS points, $POINTS points per request, $CONNS connections"
"$METER" ingest --target heroic --url "http://127.0.0.1:$HEROIC_PORT" --pid "$HEROIC_PID" --conns "$CONNS" \
    --protocol "$PROTOCOL" "${COMMON[@]}"
heroic_done=$(date +%s)
"$METER" ingest --target vm --url "http://127.0.0.1:$VM_PORT" --pid "$VM_PID" --conns "$CONNS" \
    --protocol "$PROTOCOL" "${COMMON[@]}"
vm_done=$(date +%s)

total=$((SERIES * POINTS))
disk() { # FIGURE [TARGET…]: bytes on disk per point (default: both servers)
    # heroic: everything it keeps (segments, WAL, series catalog, metadata,
    # suggest). VictoriaMetrics: data and index; not cache/, which it
    # rebuilds at will and writes at shutdown.
    local figure=$1; shift
    local targets=("$@")
    [ ${#targets[@]} -gt 0 ] || targets=(heroic vm)
    for t in "${targets[@]}"; do
        if [ "$t" = vm ]; then dirs=("$WORK/vm/data" "$WORK/vm/indexdb"); else dirs=("$WORK/heroic"); fi
        bytes=$(du -scb "${dirs[@]}" | tail -1 | cut -f1)
        printf '%s\t%s\t%s\n' "$t" "$figure" "$(awk -v b="$bytes" -v n="$total" 'BEGIN { printf "%.4f", b / n }')" >>"$OUT"
        log "$t: $bytes bytes on disk ($figure)"
    done
}
peak_rss() { # PID: the process's peak resident memory, MB
    awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

# Disk use SETTLE seconds after each server's own ingest ended, running.
log "measuring disk use ${SETTLE} s after ingest"
sleep_until() { local d=$(($1 - $(date +%s))); [ "$d" -le 0 ] || sleep "$d"; }
sleep_until $((heroic_done + SETTLE))
disk bytes_per_point_settled heroic
sleep_until $((vm_done + SETTLE))
disk bytes_per_point_settled vm
heroic_rss=$(peak_rss "$HEROIC_PID")

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
disk bytes_per_point

log "queries ($QUERIES): $RUNS warm runs each"
"$METER" query --target heroic --url "http://127.0.0.1:$HEROIC_PORT" --pid "$HEROIC_PID" --runs "$RUNS" \
    --queries "$QUERIES" "${COMMON[@]}"
"$METER" query --target vm --url "http://127.0.0.1:$VM_PORT" --pid "$VM_PID" --runs "$RUNS" \
    --queries "$QUERIES" "${COMMON[@]}"
if [ "$PROMQL" = 1 ]; then
    # Prometheus gets the same data the way its own tests do: the series
    # backfilled into TSDB blocks by promtool, loaded at start.
    log "prometheus: backfilling the data with promtool"
    "$METER" openmetrics --file "$WORK/data.om" "${COMMON[@]:0:4}"
    promtool tsdb create-blocks-from openmetrics --max-block-duration=72h "$WORK/data.om" "$WORK/prom" >"$WORK/promtool.log"
    rm -f "$WORK/data.om"
    printf 'global: {}\n' >"$WORK/prometheus.yml"
    prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom" \
        --storage.tsdb.retention.time=30d --web.listen-address="127.0.0.1:$PROM_PORT" >"$WORK/prometheus.log" 2>&1 &
    PROM_PID=$!
    wait_http "http://127.0.0.1:$PROM_PORT/-/ready"
    "$METER" query --target prometheus --url "http://127.0.0.1:$PROM_PORT" --pid "$PROM_PID" --runs "$RUNS" \
        --queries promql_rate "${COMMON[@]}"
fi
# heroic was restarted: its peak is the larger of the two processes'.
heroic_rss=$(awk -v a="$heroic_rss" -v b="$(peak_rss "$HEROIC_PID")" 'BEGIN { print (a > b ? a : b) }')
printf 'heroic\tpeak_rss_mb\t%s\nvm\tpeak_rss_mb\t%s\n' "$heroic_rss" "$(peak_rss "$VM_PID")" >>"$OUT"

log "load: $(uptime)"
"$METER" report --out "$OUT"
