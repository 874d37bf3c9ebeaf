#!/usr/bin/env bash
# Checks packaging/flowpicd@.service: `systemd-analyze verify` (syntax, directives, the
# command exists) and `systemd-analyze security --offline=yes` (exposure score; docs/operations.md
# records it). Usage: scripts/check-unit.sh [FLOWPICD_BINARY]
# verify wants ExecStart's binary to exist: the unit is checked as a copy whose ExecStart runs
# FLOWPICD_BINARY (default: build/dataplane/flowpicd, else /bin/true) instead of /usr/bin/flowpicd.
# Exit 0 ok, 1 a check failed, 77 systemd-analyze is not installed (meson shows SKIP).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
unit="$here/packaging/flowpicd@.service"
bin=${1:-$here/build/dataplane/flowpicd}
[ -x "$bin" ] || bin=/bin/true

if ! command -v systemd-analyze > /dev/null 2>&1; then
  echo "check-unit: systemd-analyze not found (Debian package systemd): skipping" >&2
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s#^ExecStart=/usr/bin/flowpicd #ExecStart=$bin #" "$unit" > "$tmp/flowpicd@.service"
grep -q "^ExecStart=$bin -c /etc/flowpic/%i.yaml\$" "$tmp/flowpicd@.service" ||
  { echo "check-unit: ExecStart is not '/usr/bin/flowpicd -c /etc/flowpic/%i.yaml'" >&2; exit 1; }
cd "$tmp"
status=0
# verify prints nothing for a clean unit: any line is a finding (unknown directive, bad value).
out=$(systemd-analyze verify "./flowpicd@check.service" 2>&1) || status=1
if [ -n "$out" ]; then
  echo "$out" >&2
  status=1
fi
echo "check-unit: systemd-analyze verify: $([ $status = 0 ] && echo clean || echo FAILED)"
sec=$(systemd-analyze security --offline=yes "./flowpicd@check.service" 2>&1) || { echo "$sec" >&2; exit 1; }
score=$(echo "$sec" | grep -o 'Overall exposure level for [^:]*: .*' | sed 's/.*: //')
echo "check-unit: systemd-analyze security --offline=yes: $score"
[ -n "$score" ] || { echo "$sec" >&2; exit 1; }
# 4.2 when this was written (docs/operations.md); a change that loosens it past 5.0 fails here.
if awk -v s="${score%% *}" 'BEGIN { exit !(s > 5.0) }'; then
  echo "check-unit: exposure ${score%% *} is above 5.0: say why in docs/operations.md and raise this limit" >&2
  status=1
fi
# Guard the hardening that matters here: these lines must stay in the unit.
for line in 'RuntimeDirectory=flowpicd/%i' 'RuntimeDirectoryMode=0750' 'ProtectSystem=strict' 'NoNewPrivileges=yes'; do
  grep -qx "$line" "$unit" || { echo "check-unit: $line missing from $unit" >&2; status=1; }
done
grep -q '^CapabilityBoundingSet=CAP_' "$unit" || { echo "check-unit: CapabilityBoundingSet= missing" >&2; status=1; }
exit $status
