#!/usr/bin/env bash
# The README's second command: install, build, run every test suite.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
BUILD="${FLOWPIC_BUILD:-build}"
meson test -C "$BUILD" --print-errorlogs --num-processes 2 "$@"
rc=$?
# One plain closing line for CI: "N passed, N failed".
python3 - "$BUILD/meson-logs/testlog.json" <<'PY'
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"): passed += 1
    elif r == "SKIP": skipped += 1
    else: failed += 1
print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
PY
exit $rc
