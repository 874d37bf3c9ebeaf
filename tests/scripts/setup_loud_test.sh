#!/usr/bin/env bash
# scripts/setup.sh must not hide a failing step: with a compiler that fails, the configure step
# exits non-zero and prints the step, the end of its log (meson's own error) and what to do.
set -u
repo=${FLOWPIC_REPO:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$(FLOWPIC_SKIP_PACKAGES=1 FLOWPIC_BUILD="$tmp/build" CXX=/bin/false bash "$repo/scripts/setup.sh" 2>&1)
rc=$?
fail() { echo "FAIL: $1"; echo "$out"; exit 1; }
[ "$rc" -ne 0 ] || fail "setup.sh exited 0 with a failing compiler"
grep -q "setup: meson setup failed" <<<"$out" || fail "the failing step is not named"
grep -q "Unable to detect GNU compiler type" <<<"$out" || fail "meson's own error (the log tail) is not shown"
grep -q "setup: a missing dependency" <<<"$out" || fail "no hint of what to do"
echo "setup_loud: 1 passed, 0 failed"
