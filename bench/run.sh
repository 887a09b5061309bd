#!/usr/bin/env bash
# run.sh - runs every benchmark against freshly started daemons and prints a
# summary. Builds nothing: `make bench` builds first. BUILD_DIR (default
# build) names the build directory; KEEP=1 keeps the scratch directory.
# Each benchmark gets its own daemon on a fresh data dir and a free loopback
# port; every daemon is stopped on exit. Takes about a minute.
#   INGEST_CONNECTIONS=64 INGEST_DURATION=10 INGEST_WARMUP=2 INGEST_SWEEP="16 256"
#   FANOUT_SOCKETS=2000 FANOUT_MESSAGES=200   MEMORY_TICKETS=100000   WORKSPACE_TICKETS=10000
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
SB_BIN=$BUILD_DIR/switchboard
INGEST=$BUILD_DIR/bench/bench_ingest
FANOUT=$BUILD_DIR/bench/bench_fanout
INGEST_CONNECTIONS=${INGEST_CONNECTIONS:-64}
INGEST_DURATION=${INGEST_DURATION:-10}
INGEST_WARMUP=${INGEST_WARMUP:-2}
INGEST_SWEEP=${INGEST_SWEEP-16 256}
FANOUT_SOCKETS=${FANOUT_SOCKETS:-2000}
FANOUT_MESSAGES=${FANOUT_MESSAGES:-200}
MEMORY_TICKETS=${MEMORY_TICKETS:-100000}
for f in "$SB_BIN" "$INGEST" "$FANOUT"; do
    [ -x "$f" ] || { echo "run.sh: $f is missing; run 'make bench' (or build $BUILD_DIR)" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/sb-bench.XXXXXX)
export WORK
. "$ROOT/bench/lib.sh"
cleanup() {
    sb_stop_all
    if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "run.sh: scratch files kept in $WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# 2,000 sockets for the client plus as many in the daemon.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

status=0
started=$(date +%s)

# ---- 1. ingest ----
echo "== ingest: $INGEST_CONNECTIONS connections, ${INGEST_DURATION} s (+${INGEST_WARMUP} s warmup) =="
sb_start ingest
ingest_cmd="bench_ingest --url $SB_URL --secret <channel 1 secret> --connections $INGEST_CONNECTIONS --threads 2 --duration $INGEST_DURATION --warmup $INGEST_WARMUP --new-ratio 0.2"
"$INGEST" --url "$SB_URL" --secret "$SB_SECRET" --connections "$INGEST_CONNECTIONS" --threads 2 \
    --duration "$INGEST_DURATION" --warmup "$INGEST_WARMUP" --new-ratio 0.2 | tee "$WORK/ingest.txt" || status=1
ingest_commits=$(sb_metric switchboard_store_commits_total || echo "?")
ingest_ops=$(sb_metric switchboard_store_ops_total || echo "?")
ingest_batch=$(sb_metric switchboard_store_max_batch || echo "?")
ingest_rss=$(sb_rss_kb)
ingest_db=$(sb_file_bytes "$SB_DATA/switchboard.db")
ingest_wal=$(sb_file_bytes "$SB_DATA/switchboard.db-wal")
sb_stop 120
ingest_stop=$SB_STOP_SECONDS

# ---- 1b. ingest at other connection counts (closed loop: latency ~ connections / throughput) ----
for c in $INGEST_SWEEP; do
    echo
    echo "== ingest: $c connections, ${INGEST_DURATION} s (+${INGEST_WARMUP} s warmup) =="
    sb_start "ingest$c"
    "$INGEST" --url "$SB_URL" --secret "$SB_SECRET" --connections "$c" --threads 2 \
        --duration "$INGEST_DURATION" --warmup "$INGEST_WARMUP" --new-ratio 0.2 | tee "$WORK/ingest$c.txt" || status=1
    sb_stop 120
done

# ---- 2. fan-out ----
echo
echo "== fan-out: $FANOUT_SOCKETS WebSockets, $FANOUT_MESSAGES messages =="
sb_start fanout
token=$("$SB_BIN" token create --agent admin@demo.switchboard --data "$SB_DATA")
fanout_cmd="bench_fanout --url $SB_URL --secret <channel 1 secret> --token <admin token> --sockets $FANOUT_SOCKETS --messages $FANOUT_MESSAGES --interval-ms 20"
"$FANOUT" --url "$SB_URL" --secret "$SB_SECRET" --token "$token" --sockets "$FANOUT_SOCKETS" \
    --messages "$FANOUT_MESSAGES" --interval-ms 20 | tee "$WORK/fanout.txt" || status=1
fanout_rss=$(sb_rss_kb)
echo
echo "-- the same with every message from a new contact (3 events per message) --"
"$FANOUT" --url "$SB_URL" --secret "$SB_SECRET" --token "$token" --sockets "$FANOUT_SOCKETS" \
    --messages "$FANOUT_MESSAGES" --interval-ms 20 --fresh-contacts | tee "$WORK/fanout3.txt" || status=1
sb_stop 60

# ---- 3. memory ----
echo
echo "== memory: idle, then $MEMORY_TICKETS open tickets =="
BUILD_DIR=$BUILD_DIR TICKETS=$MEMORY_TICKETS "$ROOT/bench/memory.sh" | tee "$WORK/memory.txt" || status=1

# ---- 4. the browser workspace ----
echo
echo "== workspace: first load with ${WORKSPACE_TICKETS:-10000} tickets, in headless chromium =="
BUILD_DIR=$BUILD_DIR TICKETS=${WORKSPACE_TICKETS:-10000} node "$ROOT/bench/workspace.mjs" | tee "$WORK/workspace.txt" || status=1

elapsed=$(( $(date +%s) - started ))
field() {
    awk -v key="$2" '$1 == "RESULT" { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) { print kv[2]; exit } } }' \
        "$WORK/$1.txt"
}
sweep_lines=""
for c in $INGEST_SWEEP; do
    sweep_lines="$sweep_lines$(printf '\n            %-16s %6s msg/s   p50 %s  p99 %s  max %s ms' "$c connections" \
        "$(field "ingest$c" msgs_per_s)" "$(field "ingest$c" p50_ms)" "$(field "ingest$c" p99_ms)" "$(field "ingest$c" max_ms)")"
done
kb() { awk -v k="$1" 'BEGIN { if (k == "" || k == "?") print "?"; else printf "%.1f MiB", k / 1024 }'; }

cat <<SUMMARY

==================================== Switchboard benchmark summary ====================================
date        $(date -u '+%Y-%m-%d %H:%M:%S UTC')   commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (dirty)')
machine     $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, kernel $(uname -r)
binary      $SB_BIN ($("$SB_BIN" version 2>/dev/null || echo '?'))
storage     $(df -hT "$WORK" | awk 'NR == 2 { print $2 " on " $1 }') (scratch dir $WORK); SQLite WAL, each commit fdatasync()ed before its answers
load        generator on the same machine, loopback TCP

ingest      $ingest_cmd
            durable msg/s  $(field ingest msgs_per_s)   (target >= 30,000)
            latency ms     p50 $(field ingest p50_ms)  p90 $(field ingest p90_ms)  p99 $(field ingest p99_ms)  max $(field ingest max_ms)   (target p99 <= 10)
            requests       $(field ingest requests) measured, $(field ingest non200) non-200, $(field ingest errors) errors
            daemon         $ingest_ops store ops in $ingest_commits commits (max batch $ingest_batch); RSS $(kb "$ingest_rss");
                           db $(sb_mib "$ingest_db") + WAL $(sb_mib "$ingest_wal") after the run; graceful stop ${ingest_stop} s
            same load, other connection counts (a fresh daemon each):$sweep_lines

fan-out     $fanout_cmd
            sockets        $(field fanout connected) of $(field fanout sockets) connected
            events         $(field fanout received) of $(field fanout expected) message.created received
            latency ms     p50 $(field fanout p50_ms)  p90 $(field fanout p90_ms)  p99 $(field fanout p99_ms)  max $(field fanout max_ms)   (target p99 <= 20)
                           slowest socket per message p99 $(field fanout last_p99_ms); POST p50 $(field fanout post_p50_ms)
            1 event/msg    message.created only (messages from 50 contacts whose tickets exist)
            3 events/msg   --fresh-contacts: p50 $(field fanout3 p50_ms)  p99 $(field fanout3 p99_ms)  max $(field fanout3 max_ms);  $(field fanout3 received) of $(field fanout3 expected) received
            daemon RSS     $(kb "$fanout_rss") with the sockets open

memory      bench/memory.sh (TICKETS=$MEMORY_TICKETS; fill: bench_ingest --requests $MEMORY_TICKETS --new-ratio 1 --connections 64)
            RSS idle       $(kb "$(field memory rss_idle_kb)") fresh;  $(kb "$(field memory rss_restart_kb)") after a restart with the tickets
            RSS full       $(kb "$(field memory rss_full_kb)") with $(field memory open) open tickets (peak $(kb "$(field memory hwm_kb)"))
            database       $(sb_mib "$(field memory db_bytes)") + WAL $(sb_mib "$(field memory wal_bytes)") live; $(sb_mib "$(field memory db_after_stop_bytes)") + WAL $(sb_mib "$(field memory wal_after_stop_bytes)") after a graceful stop ($(field memory stop_s) s)

workspace   bench/workspace.mjs (TICKETS=${WORKSPACE_TICKETS:-10000}; chromium, loopback)
            first load     median $(awk '$1 == "RESULT" { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "first_load_median_ms") print kv[2] } }' "$WORK/workspace.txt") ms, worst $(awk '$1 == "RESULT" { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "first_load_max_ms") print kv[2] } }' "$WORK/workspace.txt") ms   (target < 1000)
            $(grep '^scrolled' "$WORK/workspace.txt" | sed 's/  */ /g')

total time  ${elapsed} s$( [ "$status" = 0 ] || echo '   (SOME BENCHMARK REPORTED ERRORS: see above)')
=======================================================================================================
SUMMARY
exit $status
