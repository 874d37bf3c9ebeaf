#!/usr/bin/env bash
# Lab replay (docs/lab.md): dpdk-testpmd replays a capture into flowpicd over memif and takes back
# what flowpicd forwards; prints one accounting table (sent, received, forwarded, dropped by reason,
# returned, verdicts by class). No NIC, no hugepages. Cleans up on exit and on Ctrl-C.
#
#   scripts/lab-replay.sh testpmd CAPTURE [--loop N] [--model FILE] [--keep]
#
# --loop N   replays the capture N times back to back (one capture of N copies; default 1)
# --model    the model (default models/default.fpm)
# --keep     keeps the work directory (configs, logs, verdicts, summary) and prints where
# CPUs: flowpicd polls on CPU 1 (configs/lab.yaml); testpmd's main lcore and its one forwarding
# lcore (both directions: capture -> memif, memif -> tx_pcap) share CPU 0 with flowpicd's builder
# and inference ($LAB_TESTPMD_LCORES, default 0@0,1@0). testpmd forwards with "io retry": a burst
# the memif ring cannot take yet is retried (every 10 us, up to 1 s), not dropped; meanwhile it
# reads nothing back, so flowpicd may count tx_full on long replays.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '6,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ "${1:-}" = testpmd ] || usage
shift
[ $# -ge 1 ] || usage
CAPTURE=$1
shift
LOOP=1
MODEL=models/default.fpm
KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --loop) LOOP=${2:?--loop needs a number}; shift 2 ;;
    --model) MODEL=${2:?--model needs a file}; shift 2 ;;
    --keep) KEEP=1; shift ;;
    *) usage ;;
  esac
done
BUILD="${FLOWPIC_BUILD:-build}"
FLOWPICD="$BUILD/dataplane/flowpicd"
FLOWPICCTL="$BUILD/ctl/flowpicctl"
TESTPMD="${TESTPMD:-$(command -v dpdk-testpmd || true)}"
die() { echo "lab-replay: $*" >&2; exit 1; }
[ -x "$FLOWPICD" ] && [ -x "$FLOWPICCTL" ] || die "$FLOWPICD or $FLOWPICCTL missing: build first (bash scripts/setup.sh)"
[ -n "$TESTPMD" ] || die "dpdk-testpmd not found: install Debian's dpdk package (or set TESTPMD)"
[ -f "$CAPTURE" ] || die "capture '$CAPTURE' not found"
[[ "$LOOP" =~ ^[1-9][0-9]*$ ]] || die "--loop takes a whole number >= 1"
[ "$(id -u)" = 0 ] || die "run as root (DPDK's memif and EAL need it)"

WORK=$(mktemp -d /tmp/flowpic-lab.XXXXXX)
FD_PID="" TP_PID=""
cleanup() {
  trap - EXIT INT TERM
  exec 3>&-
  [ -n "$TP_PID" ] && kill "$TP_PID" 2>/dev/null && wait "$TP_PID" 2>/dev/null
  [ -n "$FD_PID" ] && kill -TERM "$FD_PID" 2>/dev/null && wait "$FD_PID" 2>/dev/null
  # DPDK 22.11 leaves the runtime directory of testpmd's prefix behind (flowpicd removes its own).
  [ -n "${PREFIX:-}" ] && rm -rf "/var/run/dpdk/${PREFIX}tp"
  if [ "$KEEP" = 1 ]; then echo "lab-replay: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'echo "lab-replay: interrupted" >&2; exit 130' INT TERM

# The replayed capture: N copies back to back (classic pcap, the capture's own header once).
REPLAY="$CAPTURE"
if [ "$LOOP" -gt 1 ]; then
  REPLAY="$WORK/replay.pcap"
  python3 - "$CAPTURE" "$LOOP" "$REPLAY" <<'PY' || die "--loop needs a classic pcap capture (not pcapng)"
import sys
data = open(sys.argv[1], "rb").read()
if data[:4] not in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"):
    sys.exit(1)
with open(sys.argv[3], "wb") as f:
    f.write(data[:24])
    for _ in range(int(sys.argv[2])):
        f.write(data[24:])
PY
fi

export FLOWPICD_RUN_DIR="$WORK/run"
RUN="$FLOWPICD_RUN_DIR/lab"
PREFIX="fplab$$"
"$FLOWPICD" -c configs/lab.yaml --set model="$MODEL" \
  --set "eal=[--no-huge, -m, \"1024\", --no-pci, --file-prefix, $PREFIX, --log-level, \"lib.eal:warning\"]" \
  --set flow_table.capacity=65536 --set outputs.stats_interval_s=0 \
  --summary-json "$WORK/summary.json" > "$WORK/flowpicd.out" 2> "$WORK/flowpicd.err" &
FD_PID=$!
for _ in $(seq 1 600); do
  [ -S "$RUN/lab.memif" ] && [ -S "$RUN/control.sock" ] && break
  kill -0 "$FD_PID" 2>/dev/null || { tail -n 5 "$WORK/flowpicd.err" >&2; die "flowpicd did not start (its log above)"; }
  sleep 0.1
done
[ -S "$RUN/control.sock" ] || die "flowpicd did not open its sockets in 60 s (log: $WORK/flowpicd.err, --keep keeps it)"

mkfifo "$WORK/testpmd.in"
exec 3<>"$WORK/testpmd.in"   # testpmd's interactive prompt reads its commands from here
"$TESTPMD" --no-huge -m 256 --no-pci --file-prefix "${PREFIX}tp" --lcores="${LAB_TESTPMD_LCORES:-0@0,1@0}" \
  --log-level lib.eal:warning \
  --vdev="net_pcap0,rx_pcap=$REPLAY,tx_pcap=$WORK/returned.pcap" \
  --vdev="net_memif0,role=client,socket=$RUN/lab.memif,socket-abstract=no" -- \
  -i --forward-mode=io --no-flush-rx --nb-cores=1 --total-num-mbufs=8192 \
  < "$WORK/testpmd.in" > "$WORK/testpmd.out" 2> "$WORK/testpmd.err" &
TP_PID=$!
printf 'set fwd io retry\nset burst tx delay 10 retry 100000\nstart\n' >&3

# Until flowpicd's forwarded count has not moved for 2 s (the replay is over).
last=-1 still=0
while [ "$still" -lt 4 ]; do
  sleep 0.5
  kill -0 "$TP_PID" 2>/dev/null || { tail -n 5 "$WORK/testpmd.err" >&2; die "testpmd exited early (its log above)"; }
  now=$("$FLOWPICCTL" -i lab --json stats 2>/dev/null |
        python3 -c 'import json,sys; print(sum(p["tx"]["packets"] for p in json.load(sys.stdin)["ports"]))' || echo -1)
  if [ "$now" = "$last" ] && [ "$now" != 0 ]; then still=$((still + 1)); else still=0; fi
  last=$now
done
printf 'stop\nquit\n' >&3   # stop prints the forward statistics per port
wait "$TP_PID" || true
TP_PID=""
kill -TERM "$FD_PID"
wait "$FD_PID" || true
FD_PID=""

python3 - "$WORK" "$LOOP" "$CAPTURE" <<'PY'
import json, re, sys
work, loop, capture = sys.argv[1], int(sys.argv[2]), sys.argv[3]
tp = {}
port = None
for line in open(f"{work}/testpmd.out"):
    m = re.search(r"Forward statistics for port (\d+)", line)
    if m:
        port = int(m.group(1)); tp[port] = {}; continue
    if "Accumulated" in line:
        port = None
    if port is not None:
        for k, v in re.findall(r"([A-Z]+-[a-z]+):\s+(\d+)", line):
            tp[port][k] = int(v)
s = json.load(open(f"{work}/summary.json"))
p = s["ports"][0]
dev = p.get("device_stats", {})
rows = [
    ("testpmd read from the capture (port 0 rx)", tp.get(0, {}).get("RX-packets")),
    ("testpmd sent to flowpicd (port 1 tx)", tp.get(1, {}).get("TX-packets")),
    ("  not sent: testpmd tx dropped", tp.get(1, {}).get("TX-dropped")),
    ("flowpicd received", p["rx"]),
    ("flowpicd forwarded", p["forwarded"]),
    ("  dropped: action", p["dropped"]["action"]),
    ("  dropped: tx_full", p["dropped"]["tx_full"]),
    ("  memif device rx / tx (held after testpmd left)" if dev.get("held") else "  memif device rx / tx",
     f'{dev.get("ipackets")} / {dev.get("opackets")}'),
    ("testpmd got back (port 1 rx)", tp.get(1, {}).get("RX-packets")),
    ("testpmd wrote to returned.pcap (port 0 tx)", tp.get(0, {}).get("TX-packets")),
]
print(f"lab replay of {capture} x{loop} (flowpicd {s['model']}, clock {s['lcores'][0]['clock']})")
w = max(len(r[0]) for r in rows)
for name, v in rows:
    print(f"  {name:<{w}}  {v if v is not None else '?':>10}")
win = s["windows"]
print(f"  windows: closed {win['closed']}, too small {win['too_small']}, dropped "
      f"ring_full {win['dropped']['ring_full']} pool_empty {win['dropped']['pool_empty']}, classified {win['classified']}")
v = s["verdicts"]
print(f"  verdicts {v['total']}: " + ", ".join(f"{k} {n}" for k, n in v["by_class"].items()))
sent_all = tp.get(0, {}).get("RX-packets") == tp.get(1, {}).get("TX-packets")
if not sent_all:
    print("  note: testpmd did not send everything it read (TX-dropped: the memif ring was full)")
if p["dropped"]["tx_full"]:
    print("  note: tx_full = what testpmd could not take back while it waited to send (io retry)")
ok = tp.get(1, {}).get("TX-packets") == p["rx"] == p["forwarded"] + p["dropped"]["action"] + p["dropped"]["tx_full"] \
    and tp.get(1, {}).get("RX-packets") == p["forwarded"]
print("  accounting: " + ("every packet accounted for" if ok else "MISMATCH (see the rows above)"))
sys.exit(0 if ok else 1)
PY
