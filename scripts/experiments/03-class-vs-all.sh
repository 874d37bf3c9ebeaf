#!/bin/bash
# Class-vs-all on ODE-Flow (docs/accuracy.md): one binary model per class (CLASS vs "other"),
# the chosen picture, at most EPOCHS epochs (short runs), seed 1; evaluated once on val.
source "$(dirname "$0")/common.sh"
O=$OUT/ode; mkdir -p "$O"
[ -f "$O/train.fpd" ] || fp dataset ode-flow --data "$DATA/ode-flow" --split train -o "$O/train.fpd"
[ -f "$O/val.fpd" ] || fp dataset ode-flow --data "$DATA/ode-flow" --split val -o "$O/val.fpd"
EPOCHS=${EPOCHS:-10}
one() {
  local c=$1
  fp train -d "$O/train.fpd" -o "$O/ova-$c.fpm" --name "ova-$c" --one-vs-all "$c" --seed 1 --threads "$THREADS" \
     "${ODE_PICTURE[@]}" --epochs "$EPOCHS" --patience 3 > "$O/train-ova-$c.log" 2>&1
  # Every val window not of class c counts as "other".
  local map; map=$(for x in VoIP Video File_Transfer Chat Browsing; do [ "$x" = "$c" ] || printf '%s=other,' "$x"; done)
  fp eval -m "$O/ova-$c.fpm" -d "$O/val.fpd" --map-classes "${map%,}" > "$O/eval-ova-$c.txt" 2>&1
}
pending=0
for c in VoIP Video File_Transfer Chat Browsing; do
  one "$c" & pending=$((pending + 1)); if [ $pending -ge "${JOBS:-2}" ]; then wait; pending=0; fi
done
wait
printf '%-14s %9s %9s %9s %9s %9s\n' class accuracy precision recall F1 epochs | tee "$O/ova-summary.txt"
for c in VoIP Video File_Transfer Chat Browsing; do
  acc=$(awk '/^accuracy/ {print $2}' "$O/eval-ova-$c.txt")
  prf=$(awk -v c="$c" '$1 == c && NF >= 7 {print $(NF-3), $(NF-2), $(NF-1)}' "$O/eval-ova-$c.txt")
  ep=$(grep -oE 'best epoch [0-9]+ of [0-9]+' "$O/train-ova-$c.log" | awk '{print $3 "/" $5}')
  printf '%-14s %9s %9s %9s %9s %9s\n' "$c" "$acc" $prf "$ep" | tee -a "$O/ova-summary.txt"
done
