#!/usr/bin/env bash
# voice.sh - the voice benchmark: SIPp callers through the demo IVR (DID 100, key 1) into
# the Sales queue, SIPp phones of many agents answering after RING_S s and echoing the
# audio, TALK_S s of talk, the caller hangs up. A ramp of call rates, DURATION s each, each
# on a fresh daemon (release build; SIP on 127.0.0.1 at a port the kernel picks) started
# on a copy of the data dir the setup made (agents, extensions); prints per rate the
# failed calls, concurrent calls with media, the daemon's CPU per call and peak RSS, the
# SIPp processes' CPU, then a summary and a `RESULT voice ...` line.
# Builds nothing: `make bench-voice` builds build-bench (Release) first. The work is done
# by bench/voice.py (python3 stdlib) with the scenarios in bench/sip/.
#   QUICK=1                 15 s per rate (a smoke run) instead of 120
#   RATES="10 20 30 45 60 80"  DURATION=120  STOP_ON_FAIL=1 (0: run every rate)
#   STRATEGY=round_robin    the Sales queue's strategy (the default falls back to ring_all
#                           on a daemon that has no other)
#   AGENTS=auto             1.25 x max rate x (RING_S + TALK_S)   PHONES=2 (SIPp UAS instances)
#   RING_S=2 TALK_S=10 PROMPT_S=2 FAIL_PCT=1 SETTLE=5   BUILD_DIR=build-bench   KEEP=1
#   ONE_DAEMON=1 (one daemon for the whole ramp)   RECORD=0|1 ([sip] record_calls)
# Full run (6 rates x ~2.5 min + setup): about 15-20 minutes. Exit 1 if no rate passed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# Each call holds 2-4 sockets in the daemon and SIPp opens one per rtp_stream thread.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if ! command -v "${SIPP:-sipp}" >/dev/null 2>&1; then
    echo "voice.sh: sipp is missing: apt-get install -y sip-tester" >&2
    exit 1
fi
exec python3 "$ROOT/bench/voice.py" "$@"
