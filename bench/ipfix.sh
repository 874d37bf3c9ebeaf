#!/usr/bin/env bash
# The IPFIX export bench docs/benchmarks.md cites: flow records per second of flowpic's encoder
# and of one exporter thread into nfcapd on 127.0.0.1 (unpaced, and paced at 1 M/s), with what
# nfcapd stored, and softflowd (-r CAPTURE -n 127.0.0.1:PORT, IPFIX) into the same nfcapd
# command line in the same run. Then the polling lcore with and without export
# (flowpic-dataplane-bench: flows that never end, and every packet ending its flow).
#
#   bench/ipfix.sh [BUILD_DIR]      (default: build; builds what it runs)
#
# Environment: RECORDS=5000000, SOFT_FLOWS=200000 (flows in softflowd's capture, 2 packets
# each), RUNS=3, LCORE=1 (0: skip the lcore part), OUT=/tmp/flowpic-ipfix-bench-DATE.
set -uo pipefail  # no -e: a run that fails is reported by its numbers, the others still run
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
build="${1:-$repo/build}"
RECORDS="${RECORDS:-5000000}"
SOFT_FLOWS="${SOFT_FLOWS:-200000}"
RUNS="${RUNS:-3}"
LCORE="${LCORE:-1}"
OUT="${OUT:-/tmp/flowpic-ipfix-bench-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
ninja -C "$build" -j2 bench/flowpic-ipfix-bench bench/flowpic-dataplane-bench >/dev/null
bench="$build/bench/flowpic-ipfix-bench"
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

nfpid=""
start_nfcapd() {  # start_nfcapd DIR
  rm -rf "$1"; mkdir -p "$1"
  nfcapd -b 127.0.0.1 -p "$port" -w "$1" -t 3600 -B 33554432 >"$1.log" 2>&1 &
  nfpid=$!
  sleep 0.7
}
stop_nfcapd() {  # prints the records nfcapd stored (read back with nfdump)
  kill -TERM "$nfpid" 2>/dev/null  # called in $(...): not our child there, so poll instead of wait
  while kill -0 "$nfpid" 2>/dev/null; do sleep 0.1; done
  nfdump -R "$1" -I 2>/dev/null | awk '/^Flows:/ {print $2; exit}'
}

echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/summary.txt"
for r in $(seq 1 "$RUNS"); do
  start_nfcapd "$OUT/nf-$r"
  "$bench" --records "$RECORDS" --collector "127.0.0.1:$port" --json >"$OUT/ipfix-$r.json"
  kept=$(stop_nfcapd "$OUT/nf-$r")
  start_nfcapd "$OUT/nfp-$r"
  "$bench" --records "$RECORDS" --collector "127.0.0.1:$port" --pace 1000000 --json >"$OUT/ipfix-paced-$r.json"
  kept_p=$(stop_nfcapd "$OUT/nfp-$r")
  python3 - "$OUT/ipfix-$r.json" "$kept" "$OUT/ipfix-paced-$r.json" "$kept_p" <<'PY' | tee -a "$OUT/summary.txt"
import json, sys
a, ka, b, kb = json.load(open(sys.argv[1])), int(sys.argv[2]), json.load(open(sys.argv[3])), int(sys.argv[4])
n = a["records"]
print(f"encoder {a['encoder']['records_per_s']/1e6:.1f} M records/s | exporter -> nfcapd {a['exporter']['records_per_s']/1e6:.2f} M records/s, "
      f"nfcapd stored {ka} ({100*ka/n:.1f} %) | paced 1 M/s: {b['exporter']['records_per_s']/1e6:.2f} M/s offered, nfcapd stored {kb} ({100*kb/n:.1f} %)")
PY
done

# softflowd into the same nfcapd: a capture of SOFT_FLOWS two-packet UDP flows.
cap="$OUT/softflowd.pcap"
python3 - "$cap" "$SOFT_FLOWS" <<'PY'
import struct, sys
path, flows = sys.argv[1], int(sys.argv[2])
with open(path, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    for k in range(2):
        for i in range(flows):
            src = bytes([10, (i >> 16) & 255, (i >> 8) & 255, i & 255])
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + 18, 0, 0, 64, 17, 0, src, bytes([192, 0, 2, 1]))
            udp = struct.pack("!HHHH", 1024 + i % 50000, 443, 8 + 18, 0) + bytes(18)
            frame = bytes(6) + bytes([2, 0, 0, 0, 0, 1]) + b"\x08\x00" + ip + udp
            t = 1700000000 + k
            f.write(struct.pack("<IIII", t, i % 1000000, len(frame), len(frame)))
            f.write(frame)
PY
for r in $(seq 1 "$RUNS"); do
  start_nfcapd "$OUT/sf-$r"
  t0=$(date +%s.%N)
  # softflowd keeps 15 characters of -r's path (IFNAMSIZ): give it a short relative one
  (cd "$OUT" && timeout 300 softflowd -r softflowd.pcap -n "127.0.0.1:$port" -v 10 -m "$((SOFT_FLOWS * 2))" -d -p sf.pid -c sf.ctl >"sf-$r.out" 2>&1) || true
  t1=$(date +%s.%N)
  kept=$(stop_nfcapd "$OUT/sf-$r")
  python3 -c "import sys; f,t,k=int(sys.argv[1]),float(sys.argv[2]),int(sys.argv[3]); print(f'softflowd -r ({f} flows) -> nfcapd: {f/t/1e6:.2f} M flows/s ({t:.2f} s), nfcapd stored {k} ({100*k/f:.1f} %)')" \
    "$SOFT_FLOWS" "$(python3 -c "print($t1 - $t0)")" "$kept" | tee -a "$OUT/summary.txt"
done

if [ "$LCORE" = 1 ]; then
  dp="$build/bench/flowpic-dataplane-bench"
  for idle in 30000 1; do
    for r in $(seq 1 "$RUNS"); do
      "$dp" -l 0-1 --no-huge -m 1536 --no-pci --file-prefix "dpb-ipfix-$$" --log-level lib.eal:warning -- \
        --flows 1048576 --seconds 5 --warmup 2 --idle-ms "$idle" --modes flowpicd,flowpicd-ipfix --json >"$OUT/lcore-$idle-$r.json"
      python3 - "$OUT/lcore-$idle-$r.json" "$idle" <<'PY' | tee -a "$OUT/summary.txt"
import json, sys
j = json.load(open(sys.argv[1]))
m = {r["mode"]: r for r in j["runs"]}
a, b = m["flowpicd"], m["flowpicd-ipfix"]
print(f"lcore, 1M flows, idle {sys.argv[2]} ms: flowpicd {a['mpps']:.2f} Mpps ({a['mpps_per_cpu_s']:.2f}/CPU-s), "
      f"with ipfix {b['mpps']:.2f} Mpps ({b['mpps_per_cpu_s']:.2f}/CPU-s), records {b['extra'].get('flow_records_per_s', 0)/1e6:.2f} M/s, "
      f"dropped ring-full {b['extra'].get('flow_records_dropped', 0)}")
PY
    done
  done
fi
echo "logs and JSON: $OUT"
