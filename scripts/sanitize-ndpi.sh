#!/usr/bin/env bash
# Every nDPI capture of ../shared/data through the sanitized (ASan + UBSan, leak detection on)
# `flowpic classify` and a flowpicd replay, counting sanitizer reports:
#
#   scripts/sanitize-ndpi.sh [MAX_CAPTURES]
#
# Builds flowpic and flowpicd in build-asan/ (as scripts/test-asan.sh; $FLOWPIC_ASAN_BUILD), then
# for each capture: classify with the shipped model, and replay it through flowpicd (net_pcap,
# --no-huge, the replay config's file prefix, its run directory under $OUT). Exit codes other than a sanitizer report
# are expected for some captures (3: a cut capture; flowpicd refuses non-Ethernet link types)
# and are tallied, not failed. Prints one line per 50 captures and a summary; exits 1 if any
# sanitizer report was seen (the logs are kept in $OUT, default /tmp/flowpic-sanitize-ndpi).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${FLOWPIC_ASAN_BUILD:-build-asan}
DATA=${DATA:-../shared/data}
OUT=${OUT:-/tmp/flowpic-sanitize-ndpi}
MAX=${1:-0}
[ -d "$DATA/ndpi/pcap" ] || { echo "sanitize-ndpi: no $DATA/ndpi/pcap (set DATA to the shared data folder)" >&2; exit 2; }
if [ ! -f "$B/build.ninja" ]; then
  echo "sanitize-ndpi: configuring $B (ASan + UBSan)"
  meson setup "$B" -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false > /dev/null
fi
echo "sanitize-ndpi: building flowpic and flowpicd in $B"
ninja -C "$B" tools/flowpic dataplane/flowpicd > /dev/null
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0"
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
rm -rf "$OUT" && mkdir -p "$OUT/run" && chmod 0750 "$OUT/run"
export FLOWPICD_RUN_DIR=$OUT/run   # the control socket goes to $OUT/run/replay/, not /run
REPORT='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer'
mapfile -t CAPS < <(find "$DATA/ndpi/pcap" -maxdepth 1 -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.cap' \) | sort)
[ "$MAX" -gt 0 ] && CAPS=("${CAPS[@]:0:$MAX}")
declare -A classify_rc flowpicd_rc
reports=0 n=0 start=$(date +%s)
for cap in "${CAPS[@]}"; do
  n=$((n + 1))
  name=$(basename "$cap")
  set +e
  "$B/tools/flowpic" classify -m models/default.fpm "$cap" > /dev/null 2> "$OUT/$name.classify.log"
  rc=$?
  "$B/dataplane/flowpicd" -c configs/replay.yaml --log-level error \
    --set "ports.0.device=net_pcap0,rx_pcap=$cap" --set "outputs.verdicts=$OUT/verdicts.jsonl" \
    > /dev/null 2> "$OUT/$name.flowpicd.log"
  rd=$?
  set -e
  classify_rc[$rc]=$(( ${classify_rc[$rc]:-0} + 1 ))
  flowpicd_rc[$rd]=$(( ${flowpicd_rc[$rd]:-0} + 1 ))
  for log in "$OUT/$name.classify.log" "$OUT/$name.flowpicd.log"; do
    if grep -Eq "$REPORT" "$log"; then
      reports=$((reports + 1))
      echo "sanitize-ndpi: REPORT in $log:" >&2
      grep -E -m3 "$REPORT" "$log" >&2
    fi
  done
  [ $((n % 50)) -eq 0 ] && echo "sanitize-ndpi: $n/${#CAPS[@]} captures, $reports sanitizer reports, $(( $(date +%s) - start )) s"
done
fmt() { local -n m=$1; for k in $(printf '%s\n' "${!m[@]}" | sort -n); do printf ' %s:%s' "$k" "${m[$k]}"; done; }
echo "sanitize-ndpi: ${#CAPS[@]} captures in $(( $(date +%s) - start )) s: $reports sanitizer reports;" \
  "classify exit codes$(fmt classify_rc); flowpicd exit codes$(fmt flowpicd_rc) (logs in $OUT)"
[ "$reports" -eq 0 ]
