#!/bin/bash
# Unknown application (docs/accuracy.md): for each APP=CLASS, train the 5-class nDPI category model on
# every capture that does not contain APP, then classify APP's windows (from the captures that do) and
# count how many get APP's category. APPS: nDPI application names with their mapped category.
source "$(dirname "$0")/common.sh"
APPS=${APPS:-"WhatsAppCall=VoIP YouTube=Streaming WhatsApp=Chat"}
for pair in $APPS; do
  app=${pair%%=*}; cls=${pair#*=}
  O=$OUT/unknown-$app; mkdir -p "$O"
  python3 "$(dirname "$0")/ndpi_prep.py" --data-dir "$DATA/ndpi" --out "$O" --leave-out "$app"
  # Test labels: APP's rows only.
  python3 - "$O/labels.csv" "$O/labels-$app.csv" "$app" <<'PY'
import csv, sys
r = csv.DictReader(open(sys.argv[1], newline=""))
w = csv.DictWriter(open(sys.argv[2], "w", newline=""), fieldnames=r.fieldnames)
w.writeheader(); w.writerows(x for x in r if x["category"] == sys.argv[3])
PY
  mapfile -t train < "$O/train-pcaps.txt"; mapfile -t test < "$O/test-pcaps.txt"
  fp dataset pcap --labels "$O/labels.csv" --min-confidence DPI --window time:15 --min-packets 10 \
     -o "$O/train.fpd" "${train[@]}" > "$O/dataset-train.txt" 2>&1
  fp dataset pcap --labels "$O/labels-$app.csv" --min-confidence DPI --window time:15 --min-packets 10 \
     -o "$O/test.fpd" "${test[@]}" > "$O/dataset-test.txt" 2>&1
  fp train -d "$O/train.fpd" -o "$O/model.fpm" --name "ndpi-without-$app" --seed 1 --threads "$THREADS" \
     "${NDPI_PICTURE[@]}" "${NDPI_TRAIN[@]}" > "$O/train.log" 2>&1
  fp eval -m "$O/model.fpm" -d "$O/test.fpd" --map-classes "$app=$cls" > "$O/eval.txt" 2>&1
  echo "== $app (true category $cls): $(grep -E '^accuracy' "$O/eval.txt") over $(grep -oE '[0-9]+ windows evaluated' "$O/eval.txt")"
done
