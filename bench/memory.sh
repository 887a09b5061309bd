#!/usr/bin/env bash
# memory.sh - resident memory of the daemon idle and with TICKETS (default
# 100,000) open tickets, plus the size of the database it leaves on disk.
#
#   1. start on a fresh data dir, wait SETTLE s, read VmRSS (idle);
#   2. bench_ingest --requests TICKETS --new-ratio 1: one message from each of
#      TICKETS new contacts, so TICKETS new tickets (status 'new');
#   3. wait SETTLE s, read VmRSS and VmHWM, count open tickets via /healthz;
#   4. stop (timed: the daemon checkpoints its WAL on the way out), measure
#      the files, start again on the same data and read VmRSS idle with the
#      tickets in the database.
# Usage: BUILD_DIR=build TICKETS=100000 bench/memory.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
SB_BIN=$BUILD_DIR/switchboard
INGEST=$BUILD_DIR/bench/bench_ingest
TICKETS=${TICKETS:-100000}
SETTLE=${SETTLE:-2}
CONNECTIONS=${CONNECTIONS:-64}
for f in "$SB_BIN" "$INGEST"; do
    [ -x "$f" ] || { echo "memory.sh: $f is missing; run 'make bench' (or build BUILD_DIR)" >&2; exit 1; }
done
OWN_WORK=0
if [ -z "${WORK:-}" ]; then
    WORK=$(mktemp -d /tmp/sb-bench-mem.XXXXXX)
    OWN_WORK=1
fi
. "$ROOT/bench/lib.sh"
cleanup() {
    sb_stop_all
    if [ "$OWN_WORK" = 1 ] && [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

sb_start memory
sleep "$SETTLE"
rss_idle=$(sb_rss_kb)

fill_cmd="$INGEST --url $SB_URL --secret <secret> --requests $TICKETS --new-ratio 1 --connections $CONNECTIONS"
t0=$(date +%s.%N)
"$INGEST" --url "$SB_URL" --secret "$SB_SECRET" --requests "$TICKETS" --new-ratio 1 \
    --connections "$CONNECTIONS" > "$WORK/memory-fill.txt" || {
    echo "memory.sh: the fill did not store every message:" >&2
    cat "$WORK/memory-fill.txt" >&2
}
t1=$(date +%s.%N)
fill_rate=$(sed -n 's/.*msgs_per_s=\([0-9]*\).*/\1/p' "$WORK/memory-fill.txt")
sleep "$SETTLE"
rss_full=$(sb_rss_kb)
hwm_full=$(sb_rss_kb VmHWM)
open_tickets=$(sb_health_field active_tickets)
db_live=$(sb_file_bytes "$SB_DATA/switchboard.db")
wal_live=$(sb_file_bytes "$SB_DATA/switchboard.db-wal")
shm_live=$(sb_file_bytes "$SB_DATA/switchboard.db-shm")

sb_stop 300
stop_s=$SB_STOP_SECONDS
db_after=$(sb_file_bytes "$SB_DATA/switchboard.db")
wal_after=$(sb_file_bytes "$SB_DATA/switchboard.db-wal")

# Restart on the same data: the idle footprint of a daemon holding the tickets.
SB_DATA_KEEP=$SB_DATA
"$SB_BIN" serve --config "$WORK/memory.ini" > "$WORK/memory2.out" 2> "$WORK/memory2.log" &
SB_PID=$!
SB_PIDS="$SB_PIDS $SB_PID"
for i in $(seq 1 600); do
    grep -q '^switchboard listening on ' "$WORK/memory2.out" 2>/dev/null && break
    kill -0 "$SB_PID" 2>/dev/null || break
    sleep 0.1
done
SB_URL=$(sed -n 's/^switchboard listening on \(http:[^ ]*\).*/\1/p' "$WORK/memory2.out" | head -1)
sleep "$SETTLE"
rss_restart=$(sb_rss_kb || echo "?")
open_after_restart=$(sb_health_field active_tickets 2>/dev/null || echo "?")
sb_stop 60

fmt_kb() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
echo "bench_memory  tickets=$TICKETS fill_connections=$CONNECTIONS"
echo "  fill command         $fill_cmd"
awk -v a="$t0" -v b="$t1" -v r="$fill_rate" 'BEGIN { printf "  fill                 %.1f s (%s msg/s)\n", b - a, r }'
echo "  RSS idle (fresh)     $(fmt_kb "$rss_idle")"
echo "  RSS after fill       $(fmt_kb "$rss_full")   (peak VmHWM $(fmt_kb "$hwm_full"); open tickets: $open_tickets)"
echo "  database, live       db $(sb_mib "$db_live") + wal $(sb_mib "$wal_live") + shm $(sb_mib "$shm_live")"
echo "  graceful stop        ${stop_s} s"
echo "  database, stopped    db $(sb_mib "$db_after") + wal $(sb_mib "$wal_after")"
echo "  RSS idle (restarted with the tickets)  $(fmt_kb "${rss_restart:-0}")   (open tickets: $open_after_restart)"
echo "RESULT memory tickets=$TICKETS open=$open_tickets rss_idle_kb=$rss_idle rss_full_kb=$rss_full" \
     "hwm_kb=$hwm_full rss_restart_kb=${rss_restart:-0} db_bytes=$db_live wal_bytes=$wal_live" \
     "db_after_stop_bytes=$db_after wal_after_stop_bytes=$wal_after stop_s=$stop_s fill_msgs_per_s=$fill_rate"
