#!/usr/bin/env python3
"""Mean and spread of val accuracy / macro-F1 per configuration from DIR/eval-NAME-sSEED.json,
plus holdout accuracy, epochs and training seconds from the model's training log."""
import glob, json, os, re, statistics, sys
d = sys.argv[1]
runs = {}
for f in sorted(glob.glob(os.path.join(d, "eval-*-s*.json"))):
    m = re.match(r"eval-(.+)-s(\d+)\.json", os.path.basename(f))
    j = json.load(open(f))
    log = open(os.path.join(d, f"train-{m[1]}-s{m[2]}.log")).read()
    b = re.search(r"best epoch (\d+) of (\d+): holdout accuracy ([\d.na]+); ([\d.]+) s", log)
    runs.setdefault(m[1], []).append((int(m[2]), j["accuracy"], j["macro_f1"], b[3], b[1], b[2], float(b[4]), j["model"]))
def ms(v):
    return f"{100*statistics.mean(v):.2f} ± {100*statistics.stdev(v):.2f}" if len(v) > 1 else f"{100*v[0]:.2f}"
print("config     seeds  val accuracy %     val macro-F1 %    per seed (seed: acc, holdout, best/run epochs, s, model)")
for k, v in runs.items():
    per = "; ".join(f"{s}: {100*a:.2f}, {h}, {be}/{er}, {t:.0f}s, {mid}" for s, a, f1, h, be, er, t, mid in v)
    print(f"{k:10} {len(v):5}  {ms([x[1] for x in v]):17}  {ms([x[2] for x in v]):16}  {per}")
