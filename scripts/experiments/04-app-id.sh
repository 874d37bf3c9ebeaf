#!/bin/bash
# Application identification on nDPI captures (docs/accuracy.md): label = nDPI application of
# Confidence: DPI flows, 15 s windows, split by capture (seeded, stratified by dominant app).
# Kept: applications with >= MIN_WINDOWS training windows and >= MIN_TEST test windows (most nDPI
# applications sit in a single capture, so a by-capture split leaves them on one side only).
source "$(dirname "$0")/common.sh"
O=$OUT/ndpi-app; mkdir -p "$O"
MIN_WINDOWS=${MIN_WINDOWS:-10}
MIN_TEST=${MIN_TEST:-3}
python3 "$(dirname "$0")/ndpi_prep.py" --data-dir "$DATA/ndpi" --out "$O" --seed 1 --test-fraction 0.3 --apps
for side in train test; do
  mapfile -t pcaps < "$O/$side-pcaps.txt"
  fp dataset pcap --labels "$O/labels.csv" --min-confidence DPI --window time:15 --min-packets 10 \
     -o "$O/$side.fpd" "${pcaps[@]}" > "$O/dataset-$side.txt" 2>&1
done
counts() { fp info --json "$1" | python3 -c 'import json,sys; j=json.load(sys.stdin); [print(c, n) for c, n in j["counts"]["per_class"].items()]'; }
APPS=$(join <(counts "$O/train.fpd" | sort) <(counts "$O/test.fpd" | sort) |
       awk -v a="$MIN_WINDOWS" -v b="$MIN_TEST" '$2 >= a && $3 >= b {print $1}' | paste -sd,)
echo "applications kept: $APPS" | tee "$O/apps.txt"
for s in $SEEDS; do
  fp train -d "$O/train.fpd" -o "$O/app-s$s.fpm" --name ndpi-app --seed "$s" --threads "$THREADS" \
     --classes "$APPS" "${NDPI_PICTURE[@]}" "${NDPI_TRAIN[@]}" > "$O/train-app-s$s.log" 2>&1
  fp eval -m "$O/app-s$s.fpm" -d "$O/test.fpd" --json > "$O/eval-app-s$s.json" 2> "$O/eval-app-s$s.err"
  fp eval -m "$O/app-s$s.fpm" -d "$O/test.fpd" > "$O/eval-app-s$s.txt" 2>&1
done
python3 "$(dirname "$0")/summarize.py" "$O" | tee "$O/summary.txt"
