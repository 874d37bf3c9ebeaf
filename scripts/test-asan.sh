#!/usr/bin/env bash
# The whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer, leak detection on:
#
#   scripts/test-asan.sh [meson test args]      e.g. scripts/test-asan.sh --suite dataplane
#
# Builds into build-asan/ (or $FLOWPIC_ASAN_BUILD) with the same compiler as the main build
# (g++), -Db_sanitize=address,undefined, debugoptimized; then runs every suite. Any sanitizer
# report fails its test: UBSan halts on the first error, ASan on the first error and on leaks.
# Leaks inside third-party libraries that flowpic cannot free are suppressed in
# scripts/lsan.supp, each with its reason; nothing of flowpic's own is.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${FLOWPIC_ASAN_BUILD:-build-asan}
if [ ! -f "$B/build.ninja" ]; then
  echo "test-asan: configuring $B (ASan + UBSan)"
  meson setup "$B" -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false > /dev/null
fi
echo "test-asan: building $B"
ninja -C "$B"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0"
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# Sanitized binaries run several times slower: give every test three times its timeout.
meson test -C "$B" --print-errorlogs --num-processes 2 --timeout-multiplier 3 "$@"
