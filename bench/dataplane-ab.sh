#!/usr/bin/env bash
# Compares builds of flowpic-dataplane-bench (e.g. a change and its parent) in interleaved runs:
# A B A B ..., so slow drifts of a shared host hit every binary alike. Prints each binary's
# flowpicd Mpps per run and the median. docs/benchmarks-dataplane.md cites it for before/after
# figures; bench/dataplane.sh gives the absolute figures beside their peers.
#
#   bench/dataplane-ab.sh BENCH_BINARY...
#
# Environment: RUNS=3, FLOWS=1048576, SECS=4, WARMUP=2, CPUS=0-1, HUGE=0 (1: 2 MiB hugepages,
# reserved here as root and given back at the end; HUGEPAGES=1536 of them).
# To get a parent's binary: git worktree add /tmp/parent REV && meson setup /tmp/b-parent /tmp/parent
# && ninja -C /tmp/b-parent bench/flowpic-dataplane-bench
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,12p' "$0"; exit 2; }
RUNS="${RUNS:-3}" FLOWS="${FLOWS:-1048576}" SECS="${SECS:-4}" WARMUP="${WARMUP:-2}" CPUS="${CPUS:-0-1}"
HUGE="${HUGE:-0}" HUGEPAGES="${HUGEPAGES:-1536}"
for b in "$@"; do [ -x "$b" ] || { echo "dataplane-ab: not an executable: $b" >&2; exit 2; }; done

if [ "$HUGE" = 1 ]; then
  echo "$HUGEPAGES" > /proc/sys/vm/nr_hugepages
  trap 'echo 0 > /proc/sys/vm/nr_hugepages' EXIT
  mem=(--in-memory)
else
  mem=(--no-huge -m 1024)
fi

declare -A runs
for r in $(seq "$RUNS"); do
  i=0
  for b in "$@"; do
    i=$((i + 1))
    out=$("$b" -l "$CPUS" "${mem[@]}" --no-pci --file-prefix "dpab$$-$r-$i" --log-level=error -- \
           --flows "$FLOWS" --seconds "$SECS" --warmup "$WARMUP" --modes flowpicd --json)
    mpps=$(python3 -c 'import json,sys; print("%.2f" % json.loads(sys.stdin.read())["runs"][0]["mpps"])' <<<"$out")
    runs[$b]="${runs[$b]:-} $mpps"
    echo "run $r: $b $mpps Mpps" >&2
  done
done
echo "flowpicd Mpps, $FLOWS flows, $([ "$HUGE" = 1 ] && echo hugepages || echo 'no hugepages'), $RUNS interleaved runs:"
for b in "$@"; do
  med=$(tr ' ' '\n' <<<"${runs[$b]}" | grep . | sort -n | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}')
  printf '  %-60s median %6s   runs:%s\n' "$b" "$med" "${runs[$b]}"
done
