#!/usr/bin/env bash
# Source rules the compiler does not enforce (see docs/CONTRIBUTING.md):
# banned unsafe calls, clock reads outside src/base/clock.c, tabs, long lines.
set -u
cd "$(dirname "$0")/.."
status=0
files=$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'bench/*.c' 2>/dev/null)
[ -n "$files" ] || files=$(find src tests bench -name '*.[ch]' 2>/dev/null)
report() { echo "checksrc: $1"; status=1; }

for f in $files; do
    [ -f "$f" ] || continue
    grep -nE '\b(sprintf|vsprintf|strcpy|strcat|gets|strtok|atoi|atol)\s*\(' "$f" | while IFS= read -r l; do
        echo "checksrc: $f:$l: banned function"; done | grep . && status=1
    case "$f" in
    src/base/clock.c) ;;
    src/*)
        grep -nE '\b(time|gettimeofday|clock_gettime|uv_hrtime)\(' "$f" | while IFS= read -r l; do
            echo "checksrc: $f:$l: read the clock only in src/base/clock.c"; done | grep . && status=1
        ;;
    esac
    if grep -nP '\t' "$f" >/dev/null; then report "$f: contains tabs"; fi
    perl -CSD -ne 'if (length($_) > 121) { printf "checksrc: %s:%d: line longer than 120\n", $ARGV, $.; $bad = 1 }
        END { exit($bad ? 1 : 0) }' "$f" || status=1
done
if [ $status -eq 0 ]; then echo "checksrc: ok"; fi
exit $status
