#!/usr/bin/env bash
# The dataplane bench command docs/benchmarks-dataplane.md cites. In each repetition, one after
# the other on the same CPUs: flowpicd's polling loop, pure forwarding and MAC-swap forwarding on the same
# recirculating net_ring port (flowpic-dataplane-bench), then dpdk-testpmd io on two net_null
# ports. Then the core's random cache-line rate (flowpic-memory-bench: the loop's ceiling at
# 1M flows) and window-close-to-verdict latency from flowpicd replays. Prints a table (medians).
#
#   bench/dataplane.sh [BUILD_DIR]        (default: build; builds what it runs first)
#
# Environment: RUNS=3, FLOWS=1048576, SMALL_FLOWS=4096 (diagnostic cache-resident population;
# it also runs with SMALL_ROUNDS=64 mbufs per flow: the same cache-resident table fed by cold
# mbufs), SECS=5 (measured seconds per mode), WARMUP=2,
# HUGE="0 1" (memory setups to run: 0 = --no-huge, 1 = 2 MiB hugepages, reserved here as root
# and given back at the end), HUGEPAGES=1536 (pages to reserve), CPUS=0-1 (EAL -l: main + one
# polling lcore), MODEL=models/default.fpm (else a test model from dp_make_model),
# OUT=/tmp/flowpic-dataplane-bench-DATE (logs, JSON).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
build="${1:-$repo/build}"
RUNS="${RUNS:-3}"
FLOWS="${FLOWS:-1048576}"
SMALL_FLOWS="${SMALL_FLOWS:-4096}"
SMALL_ROUNDS="${SMALL_ROUNDS:-64}"
SECS="${SECS:-5}"
WARMUP="${WARMUP:-2}"
HUGE="${HUGE:-0 1}"
HUGEPAGES="${HUGEPAGES:-1536}"
CPUS="${CPUS:-0-1}"
MODEL="${MODEL:-$repo/models/default.fpm}"
OUT="${OUT:-/tmp/flowpic-dataplane-bench-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"

if [ ! -f "$build/build.ninja" ]; then meson setup "$build" "$repo" >/dev/null; fi
ninja -C "$build" -j2 bench/flowpic-dataplane-bench bench/flowpic-memory-bench dataplane/flowpicd \
  tests/dataplane/dp_make_model >/dev/null
bench="$build/bench/flowpic-dataplane-bench"
flowpicd="$build/dataplane/flowpicd"
testpmd="$(command -v dpdk-testpmd)"

hp_file=/proc/sys/vm/nr_hugepages
hp_before="$(cat "$hp_file")"
restore_hugepages() { if [ "$(cat "$hp_file")" != "$hp_before" ]; then echo "$hp_before" >"$hp_file" || true; fi; }
trap restore_hugepages EXIT

echo "== flowpic dataplane bench $(date -u '+%Y-%m-%d %H:%M:%S UTC') commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "== machine"
lscpu | grep -E '^(Model name|CPU\(s\)|Thread\(s\) per core|Socket\(s\)|NUMA node\(s\)|L1d cache|L2 cache|L3 cache|Hypervisor vendor)' | sed 's/^/   /'
echo "   memory: $(free -g | awk '/^Mem:/{print $2 " GiB"}'), THP: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
echo "   dpdk: $(pkg-config --modversion libdpdk), testpmd: $testpmd, EAL cores: $CPUS"
echo "== logs: $OUT"

# One testpmd io run on two net_null ports, stopped with SIGINT after WARMUP+SECS seconds. Just
# before, the CPU time of its forwarding thread (rte-worker-1) is read from schedstat, so the
# packets it forwarded can be divided by the CPU time it got (the cores are shared).
run_testpmd() {  # $1 = log file, rest = memory EAL args
  local log="$1"; shift
  "$testpmd" -l "$CPUS" "$@" --no-pci --vdev net_null0 --vdev net_null1 --file-prefix "dpb-tp-$$" \
    --log-level lib.eal:warning -- --forward-mode=io --stats-period 1 </dev/null >"$log" 2>&1 &
  local pid=$! t cpu_ns=0
  sleep $((SECS + WARMUP))
  for t in /proc/$pid/task/*; do
    if [ "$(cat "$t/comm" 2>/dev/null)" = rte-worker-1 ]; then cpu_ns="$(cut -d' ' -f1 "$t/schedstat")"; fi
  done
  kill -INT "$pid" 2>/dev/null || true
  wait "$pid" || true
  echo "worker_cpu_ns $cpu_ns" >>"$log"
}

for huge in $HUGE; do
  if [ "$huge" = 1 ]; then
    if ! echo "$HUGEPAGES" >"$hp_file" 2>/dev/null || [ "$(cat "$hp_file")" -lt "$HUGEPAGES" ]; then
      echo "== hugepages: could not reserve $HUGEPAGES x 2 MiB (got $(cat "$hp_file")); skipping the hugepage runs"
      restore_hugepages
      continue
    fi
    mem=(--in-memory)
  else
    mem=(--no-huge -m 1024)
  fi
  for run in $(seq 1 "$RUNS"); do
    tag="huge$huge-run$run"
    load="$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "$load" >"$OUT/$tag.load"
    cmd=("$bench" -l "$CPUS" "${mem[@]}" --no-pci --file-prefix "dpb-$$" --log-level lib.eal:warning --
         --flows "$FLOWS" --seconds "$SECS" --warmup "$WARMUP" --modes forward,macswap,flowpicd --json)
    echo "${cmd[*]}" >"$OUT/$tag.bench.cmd"
    "${cmd[@]}" >"$OUT/$tag.bench.json" 2>"$OUT/$tag.bench.err"
    # The same code with a population that fits in the caches (diagnostic row).
    small=("$bench" -l "$CPUS" "${mem[@]}" --no-pci --file-prefix "dpb-$$" --log-level lib.eal:warning --
           --flows "$SMALL_FLOWS" --seconds "$SECS" --warmup "$WARMUP" --json)
    echo "${small[*]}" >"$OUT/$tag.small.cmd"
    "${small[@]}" >"$OUT/$tag.small.json" 2>"$OUT/$tag.small.err" || true
    # That table fed by SMALL_FLOWS x SMALL_ROUNDS cold mbufs: what the feed costs flowpicd.
    rounds=("$bench" -l "$CPUS" "${mem[@]}" --no-pci --file-prefix "dpb-$$" --log-level lib.eal:warning --
            --flows "$SMALL_FLOWS" --packets-per-flow "$SMALL_ROUNDS" --seconds "$SECS" --warmup "$WARMUP"
            --modes macswap,flowpicd --json)
    echo "${rounds[*]}" >"$OUT/$tag.rounds.cmd"
    "${rounds[@]}" >"$OUT/$tag.rounds.json" 2>"$OUT/$tag.rounds.err" || true
    tp_mem=("${mem[@]}")
    if [ "$huge" = 0 ]; then tp_mem=(--no-huge -m 1024); fi
    echo "$testpmd -l $CPUS ${tp_mem[*]} --no-pci --vdev net_null0 --vdev net_null1 --file-prefix dpb-tp-$$ -- --forward-mode=io --stats-period 1" >"$OUT/$tag.testpmd.cmd"
    run_testpmd "$OUT/$tag.testpmd.log" "${tp_mem[@]}"
    echo "   $tag done (load before: $load)"
  done
  restore_hugepages
done

# The core's random cache-line rate (flowpic-memory-bench): the ceiling of the polling loop at
# 1M flows, where each packet reads a handful of cold lines.
for run in $(seq 1 "$RUNS"); do
  echo "$build/bench/flowpic-memory-bench --in-flight 1,24 --json" >"$OUT/memory-run$run.cmd"
  "$build/bench/flowpic-memory-bench" --in-flight 1,24 --json >"$OUT/memory-run$run.json" 2>"$OUT/memory-run$run.err" || true
done

# Window close -> verdict latency: flowpicd on the shipped replay and on a larger nDPI capture.
model="$MODEL"
if [ ! -f "$model" ]; then
  model="$OUT/dptest.fpm"
  "$build/tests/dataplane/dp_make_model" "$model" >/dev/null
fi
echo "$model" >"$OUT/latency.model"
# (1) Finite replays, trace clock, as configs/replay.yaml: latency of a lightly loaded pipeline.
# (2) A saturated stream: net_pcap infinite_rx (TSC clock) closes windows faster than one
#     inference worker classifies them; latency is then queueing in the window ring.
ndpi="$repo/../shared/data/ndpi/pcap"
lat_run() {  # $1 = tag, $2 = capture, $3 = timeout s, rest = extra --set
  local tag="$1" cap="$2" secs="$3"; shift 3
  local c=("$flowpicd" -c configs/replay.yaml --set "model=$model" --set "ports.0.device=net_pcap0,rx_pcap=$cap$EXTRA_DEV"
           --set outputs.verdicts=none --set outputs.stats_interval_s=0 --set "control.socket=$OUT/ctl-$$.sock" "$@"
           --summary-json "$OUT/$tag.json")
  echo "${c[*]}" >"$OUT/$tag.cmd"
  (cd "$repo" && timeout -s TERM "$secs" "${c[@]}" >"$OUT/$tag.log" 2>&1) || [ -f "$OUT/$tag.json" ] ||
    echo "   $tag: flowpicd failed, see $OUT/$tag.log"
}
for run in $(seq 1 "$RUNS"); do
  EXTRA_DEV="" lat_run "latency-replay-wa_voice-run$run" "$repo/tests/data/wa_voice.pcap" 60
  if [ -f "$ndpi/1kxun.pcap" ]; then EXTRA_DEV="" lat_run "latency-replay-1kxun-run$run" "$ndpi/1kxun.pcap" 60; fi
  if [ -f "$ndpi/netflix.pcap" ]; then
    EXTRA_DEV=",infinite_rx=1" lat_run "latency-saturated-netflix-run$run" "$ndpi/netflix.pcap" 12 \
      --set clock=tsc --set replay.exit_at_end=false --set mempool.size=65535
  fi
done

python3 - "$OUT" "$RUNS" "$HUGE" <<'PYEOF'
import json, os, re, statistics, sys
out, runs, huges = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
med = lambda xs: statistics.median(xs) if xs else float('nan')

def testpmd(path):
    # Per-port Rx-pps of each stats period (first two dropped: start-up); all-ports RX total
    # and the forwarding thread's CPU time -> Mpps per CPU-second.
    per, port, total, cpu_ns = {}, None, None, 0
    for line in open(path, errors='replace'):
        m = re.search(r'NIC statistics for port (\d+)', line)
        if m: port = int(m.group(1))
        m = re.search(r'Rx-pps:\s+(\d+)', line)
        if m and port is not None: per.setdefault(port, []).append(int(m.group(1)))
        m = re.search(r'RX-packets:\s+(\d+)\s+RX-dropped:\s+\d+\s+RX-total', line)
        if m: total = int(m.group(1))  # the last one is "for all ports"
        m = re.match(r'worker_cpu_ns (\d+)', line)
        if m: cpu_ns = int(m.group(1))
    pps = {p: med(v[2:] if len(v) > 3 else v) / 1e6 for p, v in per.items()}
    per_cpu = total / (cpu_ns / 1e9) / 1e6 if total and cpu_ns else float('nan')
    return pps, per_cpu

def load_bench(path):
    try:
        j = json.load(open(path))
    except Exception:
        return None, {}
    return j, {r["mode"]: r for r in j["runs"]}

def row(run):
    return (run["mpps"], run["mpps_per_cpu_s"], run["cpu_seconds"] / run["seconds"])

print("\n== throughput, median of %d runs (each run back to back: flowpicd+forward+macswap, small population, small table with cold mbufs, testpmd)" % runs)
print("   wall = packets / wall-clock s; cpu = packets / CPU-s the polling thread got; share = CPU-s / s (cores are shared)")
hdr = "%-13s %-24s %9s %9s %6s   %s"
print(hdr % ("memory", "what", "wall Mpps", "cpu Mpps", "share", "per run (wall/cpu)"))
summary, rows_by_mem = {}, {}
kLinesPerPacket = 6.6  # mbuf header, frame, index, 2 slot lines, record + window-close and ring share
for h in huges:
    name = "hugepages" if h == "1" else "no hugepages"
    rows, loads = {}, []
    for r in range(1, runs + 1):
        tag = "huge%s-run%d" % (h, r)
        for suffix in (".bench.json", ".small.json", ".rounds.json"):
            j, modes = load_bench(os.path.join(out, tag + suffix))
            if j is None: continue
            if suffix == ".bench.json" and "flowpicd" in modes: summary.setdefault(name, (j, modes["flowpicd"]["extra"]))
            for m, run in modes.items():
                ppf = j.get("packets_per_flow", 1)
                rows.setdefault("%s, %d flows%s" % (m, j["flows"], " x %d mbufs each" % ppf if ppf > 1 else ""), []).append(row(run))
        pps, per_cpu = testpmd(os.path.join(out, tag + ".testpmd.log"))
        if pps:
            rows.setdefault("testpmd io, per port", []).append((statistics.mean(pps.values()), per_cpu / 2, float('nan')))
            rows.setdefault("testpmd io, both ports", []).append((sum(pps.values()), per_cpu, float('nan')))
        if os.path.exists(os.path.join(out, tag + ".load")):
            loads.append(float(open(os.path.join(out, tag + ".load")).read().split()[0]))
    if not rows: continue
    rows_by_mem[name] = rows
    for what, v in rows.items():
        print(hdr % (name, what, "%.2f" % med([x[0] for x in v]), "%.2f" % med([x[1] for x in v]),
                     "%.2f" % med([x[2] for x in v]), " ".join("%.2f/%.2f" % (x[0], x[1]) for x in v)))
    if name in summary:
        nf = summary[name][0]["flows"]
        a = rows.get("flowpicd, %d flows" % nf)
        for peer in ("forward", "macswap"):
            b = rows.get("%s, %d flows" % (peer, nf))
            if a and b:
                print(hdr % (name, "flowpicd/" + peer, "%.3f" % (med([x[0] for x in a]) / med([x[0] for x in b])),
                             "%.3f" % (med([x[1] for x in a]) / med([x[1] for x in b])), "", ""))
    print("%-13s load average (1 min) before each run: %s" % (name, " ".join("%.2f" % l for l in loads)))
print("   flowpicd = dataplane/worker.cpp lcore_main (parse, flow_hash, FlowTable::on_burst, action, tx) on 1 lcore;")
print("   forward = rx burst -> tx burst on the same net_ring port; macswap = the same forwarding swapping each frame's MACs")
print("   (l2fwd's per-packet work: touches the mbuf header and frame as flowpicd must); testpmd = io forwarding on 2 net_null ports, 1 lcore")

for name, (j, e) in summary.items():
    print("\n== memory (%s; %d flows in a table of %d, %d packets untracked)" % (name, e["flows_in_table"], e["table_capacity"], e["untracked"]))
    print("   flow table: %.1f MiB = %.1f B per flow (memory_bytes/capacity; %d record chunks, count windows of %d packets)" % (
        e["table_memory_bytes"] / 2**20, e["table_bytes_per_flow"], e["record_chunks"], e["window_packets"]))
    print("   window pool per lcore: %.1f MiB (%.1f B per flow at this table size); windows closed %.0f/s, ring full %d, pool empty %d" % (
        e["window_pool_bytes"] / 2**20, e["window_pool_bytes"] / e["table_capacity"], e["windows_per_s"],
        e["windows_ring_full"], e["windows_pool_empty"]))
    print("   bench packet population: %.1f MiB = %.0f B per mbuf (64 B data room + headroom), loop ring %.1f MiB" % (
        j["mbuf_pool_bytes"] / 2**20, j["mbuf_pool_bytes"] / j["population_mbufs"], j["loop_ring_bytes"] / 2**20))

mem = []
for r in range(1, runs + 1):
    try:
        mem.append({x["in_flight"]: x for x in json.load(open(os.path.join(out, "memory-run%d.json" % r)))["runs"]})
    except Exception:
        pass
if mem:
    print("\n== random cache lines one core reads (flowpic-memory-bench, 512 MiB, 2 MiB pages), median of %d runs" % len(mem))
    for n in sorted(mem[0]):
        v = [m[n] for m in mem if n in m]
        print("   %2d in flight: %6.1f ns per read, %6.1f M lines/s   (per run: %s)" % (
            n, med([x["ns_per_read"] for x in v]), med([x["mlines_per_s"] for x in v]),
            " ".join("%.1f" % x["mlines_per_s"] for x in v)))
    top = max(mem[0])
    rate = med([m[top]["mlines_per_s"] for m in mem if top in m])
    for name, (j, e) in summary.items():
        fp = rows_by_mem.get(name, {}).get("flowpicd, %d flows" % j["flows"])
        if fp:
            mpps = med([x[0] for x in fp])
            print("   flowpicd (%s) touches about %.1f cold lines per packet at 1M flows (docs/benchmarks-dataplane.md):"
                  " %.2f Mpps x %.1f = %.0f M lines/s, %.2f of the %d-in-flight rate" % (
                      name, kLinesPerPacket, mpps, kLinesPerPacket, mpps * kLinesPerPacket, mpps * kLinesPerPacket / rate, top))

print("\n== window close -> verdict latency (flowpicd, 1 inference worker, model %s)" % open(os.path.join(out, "latency.model")).read().strip())
caps = sorted({f.split("-run")[0][len("latency-"):] for f in os.listdir(out) if f.startswith("latency-") and f.endswith(".json")})
for cap in caps:
    p50, p99, mx, n = [], [], [], []
    for r in range(1, runs + 1):
        try:
            s = json.load(open(os.path.join(out, "latency-%s-run%d.json" % (cap, r))))
        except Exception:
            continue
        lat = s["inference"]["latency_us"]
        if not lat["count"]: continue
        p50.append(lat["p50"]); p99.append(lat["p99"]); mx.append(lat.get("max", float('nan'))); n.append(lat["count"])
    print("   %-18s windows %7d  p50 %8.0f us  p99 %8.0f us  max %8.0f us   (per run p50/p99: %s)" % (
        cap, med(n), med(p50), med(p99), med(mx), " ".join("%.0f/%.0f" % t for t in zip(p50, p99))))
PYEOF
