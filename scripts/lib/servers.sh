# Shared by the test-server scripts in scripts/servers/ (sourced, not run).

# pid_alive PIDFILE: whether PIDFILE names a running process.
pid_alive() {
    [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# installed_version PACKAGE: the version of a pip package installed for
# $PYTHON (python3 by default), or nothing.
installed_version() {
    "${PYTHON:-python3}" -m pip show "$1" 2>/dev/null | sed -n 's/^Version: //p'
}

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

# start_daemon PIDFILE LOG -- CMD...: starts CMD in the background (nohup,
# stdin from /dev/null, stdout and stderr to LOG) and writes its pid to
# PIDFILE. Environment for CMD goes in front: `VAR=x start_daemon ...`.
start_daemon() {
    local pidfile=$1 logfile=$2
    shift 2
    [ "${1:-}" != -- ] || shift
    nohup "$@" </dev/null >"$logfile" 2>&1 &
    echo $! >"$pidfile"
}

# await_daemon NAME PIDFILE LOG SECONDS WHERE -- CHECK...: polls CHECK every
# 0.1 s until it succeeds ("NAME answers on WHERE (pid P)"); fails, with LOG
# printed, when the process in PIDFILE exits first or SECONDS pass. Needs a
# `log` function.
await_daemon() {
    local name=$1 pidfile=$2 logfile=$3 seconds=$4 where=$5
    shift 5
    [ "${1:-}" != -- ] || shift
    for _ in $(seq 1 $((seconds * 10))); do
        if "$@"; then
            log "$name answers on $where (pid $(cat "$pidfile"))"
            return 0
        fi
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            log "ERROR: $name exited during start-up; its log:"
            cat "$logfile" >&2 || true
            return 1
        fi
        sleep 0.1
    done
    log "ERROR: $name did not answer on $where within $seconds s; its log:"
    cat "$logfile" >&2 || true
    return 1
}

# already_up NAME PIDFILE WHERE ROLE -- CHECK...: succeeds, saying so, when
# there is nothing to start: our NAME (pid in PIDFILE) runs and CHECK
# succeeds, or something else passes CHECK on WHERE (it is used as the
# ROLE). Needs a `log` function.
already_up() {
    local name=$1 pidfile=$2 where=$3 role=$4
    shift 4
    [ "${1:-}" != -- ] || shift
    if pid_alive "$pidfile" && "$@"; then
        log "$name already running (pid $(cat "$pidfile")) on $where"
        return 0
    fi
    if "$@"; then
        log "something already answers on $where; using it as the $role"
        return 0
    fi
    return 1
}

# status_of PIDFILE WHERE -- CHECK...: "running (pid P) on WHERE" when the
# process in PIDFILE runs and CHECK succeeds, else "not running" and exit 1.
status_of() {
    local pidfile=$1 where=$2
    shift 2
    [ "${1:-}" != -- ] || shift
    if pid_alive "$pidfile" && "$@"; then
        echo "running (pid $(cat "$pidfile")) on $where"
    else
        echo "not running"
        exit 1
    fi
}

# run_command ARG: runs the script's `start`, `stop` or `status` function;
# anything else is a usage error (exit 2).
run_command() {
    case "${1:-}" in
        start | stop | status) "$1" ;;
        *)
            echo "usage: $0 start|stop|status" >&2
            exit 2
            ;;
    esac
}
