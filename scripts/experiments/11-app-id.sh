#!/bin/bash
# Application identification on fgnet D1 (issue 10): 53 Android apps, the app package as the
# class, split by capture file (one 30-s UI-fuzzing run = one JSON file of the origin; fold 0 of
# 5 is the test side), 3 seeds. Reports window top-1/top-5, connection-level accuracy and the
# most confused apps. CAP windows per app are trained on (default 800).
source "$(dirname "$0")/common.sh"
CAP=${CAP:-800}
O=$OUT/app-id
mkdir -p "$O"
if [ ! -s "$O/apps.fpd" ]; then
  fp dataset corpus --data "$DATA" --raw-labels --sources fgnet --max-windows 100 -o "$O/apps.fpd" > "$O/dataset.txt" 2> "$O/dataset.log" ||
    { tail -20 "$O/dataset.log" >&2; exit 1; }
fi
for s in $SEEDS; do
  if [ ! -s "$O/apps-s$s.fpm" ]; then
    fp train -d "$O/apps.fpd" -o "$O/apps-s$s.fpm" --name fgnet-apps --seed "$s" --threads "$THREADS" \
       --fold 0/5 --side train --cap "$CAP" --holdout-by capture --holdout 0.1 \
       "${ODE_PICTURE[@]}" --epochs 30 --patience 5 --lr 0.001 --batch 64 > "$O/train-s$s.log" 2>&1 ||
      { tail -5 "$O/train-s$s.log" >&2; exit 1; }
  fi
  fp eval -m "$O/apps-s$s.fpm" -d "$O/apps.fpd" --fold 0/5 --side test --json > "$O/eval-s$s.json"
  fp eval -m "$O/apps-s$s.fpm" -d "$O/apps.fpd" --fold 0/5 --side test > "$O/eval-s$s.txt"
done
python3 - "$O" $SEEDS <<'PY'
import json, statistics, sys
out, seeds = sys.argv[1], sys.argv[2:]
rows = [json.load(open(f"{out}/eval-s{s}.json")) for s in seeds]
def ms(key, sub=None):
    v = [(r[sub][key] if sub else r[key]) for r in rows]
    return f"{100 * statistics.mean(v):.2f} ± {100 * (statistics.stdev(v) if len(v) > 1 else 0):.2f} %"
print(f"fgnet D1, 53 apps, by capture file (fold 0/5 test), seeds {' '.join(seeds)}")
print(f"windows {rows[0]['windows']}: top-1 {ms('accuracy')}, top-5 {ms('top5_accuracy')}, macro-F1 {ms('macro_f1')}")
print(f"connections {rows[0]['flow_level']['flows']}: accuracy {ms('accuracy', 'flow_level')}, macro-F1 {ms('macro_f1', 'flow_level')}")
print("most confused (seed %s):" % seeds[0])
for c in rows[0]["most_confused"]:
    print(f"  {c['truth']} -> {c['predicted']}: {100 * c['share_of_truth']:.1f} % of its windows ({c['windows']})")
PY
