#!/bin/bash
# nDPI categories (docs/accuracy.md, item 2): Confidence: DPI flows, >= 10 packets per 15 s window,
# nDPI categories mapped to 5 classes (ndpi_prep.py MAPPING), split by capture (seeded, stratified).
source "$(dirname "$0")/common.sh"
O=$OUT/ndpi-cat; mkdir -p "$O"
python3 "$(dirname "$0")/ndpi_prep.py" --data-dir "$DATA/ndpi" --out "$O" --seed 1 --test-fraction 0.3
for side in train test; do
  mapfile -t pcaps < "$O/$side-pcaps.txt"
  fp dataset pcap --labels "$O/labels.csv" --min-confidence DPI --window time:15 --min-packets 10 \
     -o "$O/$side.fpd" "${pcaps[@]}" > "$O/dataset-$side.txt" 2>&1
done
for s in $SEEDS; do
  fp train -d "$O/train.fpd" -o "$O/ndpi-s$s.fpm" --name ndpi-cat --seed "$s" --threads "$THREADS" \
     "${NDPI_PICTURE[@]}" "${NDPI_TRAIN[@]}" > "$O/train-ndpi-s$s.log" 2>&1
  fp eval -m "$O/ndpi-s$s.fpm" -d "$O/test.fpd" --json > "$O/eval-ndpi-s$s.json"
  fp eval -m "$O/ndpi-s$s.fpm" -d "$O/test.fpd" --thresholds 0,0.5,0.7,0.9 > "$O/eval-ndpi-s$s.txt"
done
fp eval -m "$O/ndpi-s1.fpm" -d "$O/test.fpd" --png "$O/confusion-ndpi.png" > /dev/null
python3 "$(dirname "$0")/summarize.py" "$O" | tee "$O/summary.txt"
