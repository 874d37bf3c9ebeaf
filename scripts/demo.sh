#!/usr/bin/env bash
# The README's first command: install, build, then run flowpicd on a shipped capture with the
# shipped model (configs/replay.yaml: DPDK net_pcap, no NIC, no hugepages). Prints one JSON
# verdict per classified window on stdout and the summary on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
# The demo builds only what it runs (flowpicd); scripts/test.sh builds everything.
FLOWPIC_TARGETS="${FLOWPIC_TARGETS:-dataplane/flowpicd}" bash scripts/setup.sh >&2  # stdout is for verdicts
BUILD="${FLOWPIC_BUILD:-build}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"   # DPDK's EAL needs root for its runtime directory and memory
# On a terminal (or with FLOWPIC_TABLE=1) the JSON lines are followed by a table per flow;
# piped or redirected, stdout carries the JSON lines only (for jq).
set +e
if [ -t 1 ] || [ "${FLOWPIC_TABLE:-0}" = 1 ]; then
  $SUDO "$BUILD/dataplane/flowpicd" -c configs/replay.yaml "$@" | python3 scripts/verdict_table.py
  rc=${PIPESTATUS[0]}
else
  $SUDO "$BUILD/dataplane/flowpicd" -c configs/replay.yaml "$@"
  rc=$?
fi
if [ "$rc" -ne 0 ]; then
  avail=$(awk '/MemAvailable/ {print int($2 / 1024)}' /proc/meminfo 2>/dev/null)
  echo "demo: flowpicd exited $rc (its error is above). configs/replay.yaml gives DPDK 512 MB without hugepages" \
       "(${avail:-?} MB available now); DPDK needs root for /var/run/dpdk; another flowpicd with the same" \
       "--file-prefix (flowpicd-replay) must not be running." >&2
fi
exit "$rc"
