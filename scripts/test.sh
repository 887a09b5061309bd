#!/usr/bin/env bash
# Runs the whole suite in each build directory given (normal, then the
# ASan+UBSan one) plus the source checks, and prints one closing line:
# "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
passed=0
failed=0
failures=()

count() { # name, status
    if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$1"); fi
}

scripts/checksrc.sh
count checksrc $?

for dir in "$@"; do
    log=$(mktemp)
    echo "=== ctest in $dir ==="
    # ASan: fail on leaks too; UBSan: stop on the first error.
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --test-dir "$dir" --output-on-failure -j3 --timeout 900 2>&1 | tee "$log"
    p=$(grep -oE '^[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -1)
    if [ -z "$p" ]; then
        failed=$((failed + 1)); failures+=("$dir: ctest did not finish")
    else
        total=$(echo "$p" | awk '{print $NF}')
        nf=$(echo "$p" | awk '{print $4}')
        passed=$((passed + total - nf))
        failed=$((failed + nf))
        [ "$nf" -gt 0 ] && failures+=("$dir: $nf failed")
    fi
    rm -f "$log"
done

if [ ${#failures[@]} -gt 0 ]; then
    printf 'failed: %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
