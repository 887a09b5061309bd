# lib.sh - shell helpers shared by bench/run.sh and bench/memory.sh: start a
# daemon on a fresh data dir and a free loopback port, read its figures, and
# stop it. Source it; it expects SB_BIN (the switchboard binary) and WORK (a
# scratch directory). Every daemon started here is remembered in SB_PIDS so
# the caller's trap can stop it.

SB_PIDS=""

# sb_start NAME: data dir $WORK/NAME, config $WORK/NAME.ini, log $WORK/NAME.log.
# Sets SB_PID, SB_URL, SB_SECRET, SB_DATA.
sb_start() {
    local name=$1
    SB_DATA=$WORK/$name
    rm -rf "$SB_DATA"
    cat > "$WORK/$name.ini" <<INI
; written by bench/lib.sh
[server]
listen = 127.0.0.1:0
data_dir = $SB_DATA
[log]
level = warn
[limits]
rate_per_ip = 0
rate_per_token = 0
[demo]
seed = true
INI
    "$SB_BIN" serve --config "$WORK/$name.ini" > "$WORK/$name.out" 2> "$WORK/$name.log" &
    SB_PID=$!
    SB_PIDS="$SB_PIDS $SB_PID"
    local i
    for i in $(seq 1 300); do
        if grep -q '^switchboard listening on ' "$WORK/$name.out" 2>/dev/null; then
            break
        fi
        if ! kill -0 "$SB_PID" 2>/dev/null; then
            echo "bench: the daemon exited during start; its log:" >&2
            cat "$WORK/$name.log" >&2
            return 1
        fi
        sleep 0.1
    done
    SB_URL=$(sed -n 's/^switchboard listening on \(http:[^ ]*\).*/\1/p' "$WORK/$name.out" | head -1)
    SB_SECRET=$(sed -n 's/^  API channel 1 secret: \([0-9a-f]*\).*/\1/p' "$WORK/$name.out" | head -1)
    if [ -z "$SB_URL" ] || [ -z "$SB_SECRET" ]; then
        echo "bench: the daemon did not print its address and API channel 1 secret in 30 s" >&2
        cat "$WORK/$name.out" "$WORK/$name.log" >&2
        return 1
    fi
}

# sb_stop: SIGTERM, wait up to $1 seconds (default 120), then SIGKILL.
# Sets SB_STOP_SECONDS (how long the graceful stop took, or "killed").
sb_stop() {
    local limit=${1:-120} t0 t1 i
    [ -n "${SB_PID:-}" ] || return 0
    t0=$(date +%s.%N)
    kill -TERM "$SB_PID" 2>/dev/null || true
    for i in $(seq 1 $((limit * 10))); do
        kill -0 "$SB_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SB_PID" 2>/dev/null; then
        kill -KILL "$SB_PID" 2>/dev/null || true
        SB_STOP_SECONDS=killed
    else
        t1=$(date +%s.%N)
        SB_STOP_SECONDS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    fi
    wait "$SB_PID" 2>/dev/null || true
    SB_PID=""
}

sb_stop_all() {
    local p
    for p in $SB_PIDS; do
        if kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p" 2>/dev/null || true
            sleep 1
            kill -KILL "$p" 2>/dev/null || true
        fi
    done
}

# sb_rss_kb [FIELD]: VmRSS (or VmHWM, ...) of the running daemon in kB.
sb_rss_kb() {
    awk -v f="${1:-VmRSS}:" '$1 == f { print $2 }' "/proc/$SB_PID/status"
}

# sb_metric NAME: one value from /metrics (python3: no curl dependency).
sb_metric() {
    python3 - "$SB_URL" "$1" <<'PY'
import sys, urllib.request
body = urllib.request.urlopen(sys.argv[1] + "/metrics", timeout=10).read().decode()
for line in body.splitlines():
    if line.startswith(sys.argv[2] + " "):
        print(line.split()[1])
        break
PY
}

# sb_health_field FIELD: one field of /healthz.
sb_health_field() {
    python3 - "$SB_URL" "$1" <<'PY'
import json, sys, urllib.request
print(json.load(urllib.request.urlopen(sys.argv[1] + "/healthz", timeout=30)).get(sys.argv[2], "?"))
PY
}

# sb_file_bytes PATH: size in bytes, 0 when absent.
sb_file_bytes() {
    if [ -e "$1" ]; then stat -c %s "$1"; else echo 0; fi
}

sb_mib() {
    awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'
}
