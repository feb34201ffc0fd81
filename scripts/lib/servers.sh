# Shared by the test-server scripts in scripts/servers/ (sourced, not run).

# stop_pidfile NAME PIDFILE: stops the process in PIDFILE (SIGTERM, then
# SIGKILL after 5 s) and removes the file. Needs a `log` function.
stop_pidfile() {
    local name=$1 pidfile=$2
    [ -f "$pidfile" ] || return 0
    local pid
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        log "stopped $name (pid $pid)"
    fi
    rm -f "$pidfile"
}
