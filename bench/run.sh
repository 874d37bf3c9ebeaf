#!/usr/bin/env bash
# The bench command docs/benchmarks.md cites: every flowpic-bench figure with fixed arguments,
# each beside its peer in the same run, "per core" figures pinned with taskset.
#
#   bench/run.sh [BUILD_DIR]            (default: build; builds flowpic-bench and flowpic first)
#
# Environment: CPU=1 (core to pin to), RUNS=3 (repetitions, median reported),
# OUT=/tmp/flowpic-bench-DATE (logs and JSON), MAX_LOAD=1.5 (warn above this 1-min load),
# WAIT_QUIET=0 (seconds to wait for the load to drop below MAX_LOAD before starting),
# ONLY="flowtable parse picture infer dataset" (subset), DATA=/work/shared/data/ndpi.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
build="${1:-$repo/build}"
CPU="${CPU:-1}"
RUNS="${RUNS:-3}"
MAX_LOAD="${MAX_LOAD:-1.5}"
WAIT_QUIET="${WAIT_QUIET:-0}"
ONLY="${ONLY:-flowtable parse picture infer dataset}"
DATA="${DATA:-$repo/../shared/data/ndpi}"
OUT="${OUT:-/tmp/flowpic-bench-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"

if [ ! -f "$build/build.ninja" ]; then meson setup "$build" "$repo" >/dev/null; fi
ninja -C "$build" -j2 bench/flowpic-bench tools/flowpic >/dev/null
bench="$build/bench/flowpic-bench"
pin=(taskset -c "$CPU")

load1() { cut -d' ' -f1 /proc/loadavg; }
waited=0
while [ "$waited" -lt "$WAIT_QUIET" ] && awk -v l="$(load1)" -v m="$MAX_LOAD" 'BEGIN{exit !(l > m)}'; do
  sleep 10; waited=$((waited + 10))
done

echo "== flowpic bench $(date -u '+%Y-%m-%d %H:%M:%S UTC') commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "== machine"
lscpu | grep -E '^(Model name|Architecture|CPU\(s\)|Thread\(s\) per core|Core\(s\) per socket|Socket\(s\)|NUMA node\(s\)|L1d cache|L2 cache|L3 cache|Hypervisor vendor)' | sed 's/^/   /'
echo "   AVX-512/AMX: $(grep -o -w -E 'avx512f|avx512_vnni|avx512_bf16|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "   memory: $(free -g | awk '/^Mem:/{print $2 " GiB"}'), hugepages: $(awk '/HugePages_Total/{print $2}' /proc/meminfo) (none used: EAL runs --no-huge), THP: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
echo "   kernel $(uname -r), $(g++ --version | head -1), pinned to cpu $CPU, runs $RUNS"
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
if awk -v l="$(load1)" -v m="$MAX_LOAD" 'BEGIN{exit !(l > m)}'; then
  echo "!! load above $MAX_LOAD: the machine is not quiet; figures below are lower than on an idle core (see the cpu column)"
fi

for what in $ONLY; do
  case "$what" in
  flowtable)
    echo; echo "== \$ taskset -c $CPU flowpic-bench --runs $RUNS flowtable --flows 1000000 --packets 50000000 --window count:20"
    "${pin[@]}" "$bench" --runs "$RUNS" --json "$OUT/flowtable-count20.json" flowtable --flows 1000000 --packets 50000000 --window count:20
    echo; echo "== \$ taskset -c $CPU flowpic-bench --runs $RUNS flowtable --flows 1000000 --packets 50000000 --window time:15 --no-peers"
    "${pin[@]}" "$bench" --runs "$RUNS" --json "$OUT/flowtable-time15.json" flowtable --flows 1000000 --packets 50000000 --window time:15 --no-peers
    ;;
  parse)
    echo; echo "== \$ taskset -c $CPU flowpic-bench --runs $RUNS parse --dir $DATA/pcap --repeat 20"
    "${pin[@]}" "$bench" --runs "$RUNS" --json "$OUT/parse.json" parse --dir "$DATA/pcap" --repeat 20
    ;;
  picture)
    echo; echo "== \$ taskset -c $CPU flowpic-bench --runs $RUNS picture --resolution 32 --time-axis log"
    "${pin[@]}" "$bench" --runs "$RUNS" --json "$OUT/picture.json" picture --resolution 32 --time-axis log
    ;;
  infer)
    echo; echo "== \$ taskset -c $CPU flowpic-bench --runs $RUNS infer --batch 64 --threads 1"
    "${pin[@]}" "$bench" --runs "$RUNS" --json "$OUT/infer.json" infer --batch 64 --threads 1
    echo; echo "== \$ taskset -c $CPU /usr/bin/python3 bench/torch_lenet.py --batch 64 --threads 1 --runs $RUNS   (peer, same run)"
    "${pin[@]}" /usr/bin/python3 "$here/torch_lenet.py" --batch 64 --threads 1 --runs "$RUNS" --json "$OUT/torch.json"
    openblas=/usr/lib/x86_64-linux-gnu/openblas-pthread
    if [ -e "$openblas/libblas.so.3" ]; then
      echo; echo "== \$ OPENBLAS_NUM_THREADS=1 LD_LIBRARY_PATH=$openblas taskset -c $CPU /usr/bin/python3 bench/torch_lenet.py --batch 64 --threads 1 --runs $RUNS"
      OPENBLAS_NUM_THREADS=1 LD_LIBRARY_PATH="$openblas" "${pin[@]}" /usr/bin/python3 "$here/torch_lenet.py" \
        --batch 64 --threads 1 --runs "$RUNS" --json "$OUT/torch-openblas.json"
    else
      echo "   (libopenblas0-pthread not installed: torch peer with OpenBLAS skipped)"
    fi
    ;;
  dataset)
    echo; echo "== \$ taskset -c $CPU flowpic-bench --runs $RUNS dataset --data $DATA --repeat 5"
    "${pin[@]}" "$bench" --runs "$RUNS" --json "$OUT/dataset.json" dataset --data "$DATA" --repeat 5
    ;;
  *) echo "unknown bench '$what'" >&2; exit 2 ;;
  esac
done
echo; echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg); JSON in $OUT"
