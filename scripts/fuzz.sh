#!/usr/bin/env bash
# Fuzzes one input reader of flowpic with libFuzzer (clang, ASan + UBSan):
#
#   scripts/fuzz.sh TARGET SECONDS      TARGET: parser pcap model dataset config control, or all
#
# Installs clang and its fuzzer runtime if missing (Debian 12: clang, libclang-rt-14-dev),
# configures build-fuzz/ (CXX=clang++, -Dfuzz=enabled, sanitizers on) and builds the target,
# seeds a work corpus from real inputs (fuzz/README.md: nDPI captures, the shipped models,
# configs, ../shared/data/ndpi/pcap when present), runs for SECONDS and prints one line:
# executions, executions per second, corpus size, crashes. A crash input is written to
# build-fuzz/crashes/TARGET/: copy it to fuzz/crashes/TARGET/ once fixed (a regression test).
# Environment: FUZZ_BUILD (build-fuzz), FUZZ_JOBS (1: libFuzzer workers), DATA (../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=(parser pcap model dataset config control)
usage() { echo "usage: scripts/fuzz.sh {$(IFS='|'; echo "${TARGETS[*]}")|all} SECONDS" >&2; exit 2; }
[ $# -eq 2 ] || usage
TARGET=$1
SECONDS_EACH=$2
[[ "$SECONDS_EACH" =~ ^[0-9]+$ ]] && [ "$SECONDS_EACH" -gt 0 ] || { echo "fuzz.sh: SECONDS must be a positive integer" >&2; exit 2; }
if [ "$TARGET" = all ]; then
  for t in "${TARGETS[@]}"; do "$0" "$t" "$SECONDS_EACH" || exit $?; done
  exit 0
fi
[[ " ${TARGETS[*]} " == *" $TARGET "* ]] || usage
B=$(realpath -m "${FUZZ_BUILD:-build-fuzz}")
DATA=${DATA:-../shared/data}

need=()
command -v clang++ >/dev/null || need+=(clang)
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || need+=(libclang-rt-14-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "fuzz.sh: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get install -y -q --no-install-recommends "${need[@]}" > /dev/null
fi
if [ ! -f "$B/build.ninja" ]; then
  echo "fuzz.sh: configuring $B (clang, libFuzzer, ASan + UBSan)"
  mkdir -p "$B"
  CC=clang CXX=clang++ meson setup "$B" -Dfuzz=enabled -Dtests=disabled -Dbuildtype=debugoptimized \
    -Db_sanitize=address,undefined -Db_lundef=false > "$B/setup.log" 2>&1 ||
    { tail -20 "$B/setup.log" >&2; exit 1; }
fi
ninja -C "$B" "fuzz/fuzz_$TARGET" > "$B/fuzz-$TARGET-build.log" 2>&1 || { tail -30 "$B/fuzz-$TARGET-build.log" >&2; exit 1; }

# Seeds: real inputs, copied into the work corpus once (libFuzzer adds what it finds).
CORPUS=$B/corpus/$TARGET
mkdir -p "$CORPUS" "$B/crashes/$TARGET"
if [ -z "$(ls -A "$CORPUS")" ]; then
  case $TARGET in
    parser)  # one packet per file, first byte = link type (0 Ethernet, 1 raw IP, 2 SLL, 3 loopback)
      python3 scripts/pcap_packets.py "$CORPUS" tests/data/*.pcap ;;
    pcap)
      cp tests/data/*.pcap* "$CORPUS"/
      [ -d "$DATA/ndpi/pcap" ] && find "$DATA/ndpi/pcap" -type f -size -64k -exec cp {} "$CORPUS"/ \; ;;
    model) cp models/*.fpm fuzz/seeds/model/*.fpm "$CORPUS"/ ;;
    dataset) cp fuzz/seeds/dataset/* "$CORPUS"/ ;;
    config) cp configs/*.yaml "$CORPUS"/ ;;
    control) cp fuzz/seeds/control/* "$CORPUS"/ ;;
  esac
fi
for f in fuzz/crashes/"$TARGET"/*; do [ -f "$f" ] && [ "$(basename "$f")" != .gitkeep ] && cp "$f" "$CORPUS"/; done
SEEDS=$(ls "$CORPUS" | wc -l)
LOG=$B/fuzz-$TARGET.log
echo "fuzz.sh: $TARGET for ${SECONDS_EACH} s from $SEEDS seeds (log $LOG)"
JOBS=()
# Several workers: libFuzzer writes one fuzz-N.log per job into the working directory ($B).
[ "${FUZZ_JOBS:-1}" -gt 1 ] && JOBS=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
set +e
(cd "$B" && ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$B/fuzz/fuzz_$TARGET" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -rss_limit_mb=4096 -timeout=10 \
  "${JOBS[@]}" -artifact_prefix="$B/crashes/$TARGET/" "$CORPUS") > "$LOG" 2>&1
rc=$?
set -e
[ ${#JOBS[@]} -gt 0 ] && cat "$B"/fuzz-*.log >> "$LOG"
execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$LOG" | awk '{s += $2} END {print s + 0}')
crashes=$(find "$B/crashes/$TARGET" -type f | wc -l)
printf 'fuzz %-8s %12d executions in %6d s (%9.0f/s), corpus %d -> %d, crashes %d%s\n' "$TARGET" "$execs" "$SECONDS_EACH" \
  "$(awk -v e="$execs" -v s="$SECONDS_EACH" 'BEGIN {print e / s}')" "$SEEDS" "$(ls "$CORPUS" | wc -l)" "$crashes" \
  "$([ "$crashes" -gt 0 ] && echo " (see $B/crashes/$TARGET/ and $LOG)")"
[ "$rc" -eq 0 ] && [ "$crashes" -eq 0 ]
