#!/usr/bin/env python3
"""Summarises a 10-corpus.sh run (eval-*.json, train-*.log, corpus.txt) as markdown.

  corpus_report.py OUT_DIR [--report docs/accuracy-corpus.md] [--img docs/img/corpus]
  corpus_report.py --compare OUT_DIR [OUT_DIR ...]   # leave-one-source-out accuracy, recipes side by side

Without --report it prints the tables; with it, it also appends them to the markdown file; --img
copies the run's confusion matrices and reliability diagrams into an image folder.
"""
import argparse
import glob
import json
import os
import re
import shutil
import sys


def load(out):
    evals = {}
    for path in sorted(glob.glob(os.path.join(out, "eval-*.json"))):
        name = os.path.basename(path)[5:-5]
        try:
            with open(path) as f:
                evals[name] = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            print(f"corpus_report: {path}: {e}", file=sys.stderr)
    return evals


def pct(x):
    return "-" if x is None else f"{100 * x:.1f}"


def recall_by_class(j):
    rows = {}
    for c, s in j.get("per_class", {}).items():
        if s.get("support", 0):
            rows[c] = (s["recall"], s["support"])
    return rows


def coverage_at(j, thr):
    for c in j.get("coverage", []):
        if thr is not None and abs(c["threshold"] - thr) < 1e-9:
            return c
    return None


def summary_row(name, j):
    flow = j.get("flow_level", {})
    cov = coverage_at(j, j.get("fitted_threshold"))
    return {
        "name": name,
        "windows": j.get("windows", 0),
        "acc": j.get("accuracy"),
        "f1": j.get("macro_f1"),
        "flows": flow.get("flows"),
        "flow_acc": flow.get("accuracy"),
        "flow_f1": flow.get("macro_f1"),
        "ece": j.get("ece"),
        "cov": cov["coverage"] if cov else None,
        "cov_acc": cov["accuracy"] if cov else None,
        "recall": recall_by_class(j),
        "per_source": j.get("per_source", {}),
        "temperature": j.get("temperature"),
    }


def table(rows, first):
    out = [f"| {first} | windows | accuracy | macro-F1 | flows | flow acc. | flow macro-F1 | ECE | coverage at fitted thr. | accuracy there | recall by class |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rec = ", ".join(f"{c} {pct(v[0])} ({v[1]})" for c, v in r["recall"].items())
        ece = "-" if r["ece"] is None else f"{r['ece']:.3f}"
        out.append(f"| {r['name']} | {r['windows']} | {pct(r['acc'])} | {pct(r['f1'])} | {r['flows'] if r['flows'] is not None else '-'} | "
                   f"{pct(r['flow_acc'])} | {pct(r['flow_f1'])} | {ece} | "
                   f"{pct(r['cov'])} | {pct(r['cov_acc'])} | {rec} |")
    return "\n".join(out)


def compare(dirs):
    runs = {os.path.basename(os.path.normpath(d)).replace("corpus-", ""): load(d) for d in dirs}
    sources = sorted({n[5:] for ev in runs.values() for n in ev if n.startswith("loso-")})
    print("| source left out | " + " | ".join(f"{r} (window / flow)" for r in runs) + " |")
    print("|---|" + "---|" * len(runs))
    means = {r: [] for r in runs}
    for s in sources:
        cells = []
        for r, ev in runs.items():
            j = ev.get("loso-" + s)
            if j is None:
                cells.append("-")
                continue
            means[r].append(j["accuracy"])
            cells.append(f"{pct(j['accuracy'])} / {pct(j.get('flow_level', {}).get('accuracy'))}")
        print(f"| {s} | " + " | ".join(cells) + " |")
    print("| mean window accuracy | " + " | ".join(
        f"{pct(sum(v) / len(v))} ({len(v)} sources)" if v else "-" for v in means.values()) + " |")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--compare":
        return compare(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--report")
    ap.add_argument("--img", help="also copy the run's confusion matrices and reliability diagrams here")
    args = ap.parse_args()
    evals = load(args.out)
    if not evals:
        sys.exit(f"corpus_report: no eval-*.json in {args.out}")
    recipe = os.path.basename(os.path.normpath(args.out)).replace("corpus-", "")

    folds = [summary_row(n, j) for n, j in evals.items() if n.startswith("fold")]
    loso = [summary_row(n[5:], j) for n, j in evals.items() if n.startswith("loso-")]
    odeval = evals.get("all-but-odeval")
    peers = {}
    for path in sorted(glob.glob(os.path.join(args.out, "peer-*.json"))):
        with open(path) as f:
            peers[os.path.basename(path)[5:-5]] = json.load(f)

    lines = [f"### Recipe `{recipe}`", ""]
    if folds:
        # Pool the folds: every capture is tested exactly once.
        per_source = {}
        tot = ok = 0
        for r in folds:
            for s, v in r["per_source"].items():
                w, a = v["windows"], v["accuracy"]
                p = per_source.setdefault(s, [0, 0.0])
                p[0] += w
                p[1] += a * w
        lines += ["**(a) By capture, all sources pooled** (each fold's model never saw the fold's captures; "
                  "ODE-Flow's val split is left out of these runs):", "", table(folds, "fold"), ""]
        f1s = [r["f1"] for r in folds if r["f1"] is not None]
        accs = [r["acc"] for r in folds if r["acc"] is not None]
        if f1s:
            lines.append(f"Mean over {len(folds)} folds: accuracy {pct(sum(accs) / len(accs))} %, macro-F1 {pct(sum(f1s) / len(f1s))} %; "
                         f"flow accuracy {pct(sum(r['flow_acc'] or 0 for r in folds) / len(folds))} %; "
                         f"ECE {sum(r['ece'] or 0 for r in folds) / len(folds):.3f}; accuracy at the fitted 90 % threshold "
                         f"{pct(sum(r['cov_acc'] or 0 for r in folds) / len(folds))} % "
                         f"(coverage {pct(sum(r['cov'] or 0 for r in folds) / len(folds))} %).")
            lines.append("")
        lines.append("Window accuracy per source over all folds (each capture tested once):")
        lines.append("")
        lines.append("| source | windows | accuracy |")
        lines.append("|---|---|---|")
        for s, (w, a) in sorted(per_source.items()):
            lines.append(f"| {s} | {w} | {pct(a / w if w else None)} |")
        lines.append("")
    if loso:
        lines += ["**(b) Leave one source out** (trained on every other source, tested on all of this source's "
                  "windows whose class the model knows):", "", table(loso, "source left out"), ""]
    if peers:
        model = next(iter(peers.values())).get("model", "?")
        lines += [f"**Peer**: `{model}` tested on every source the same way (windows of classes it lacks, e.g. `other`, "
                  "are skipped; a source it trained on is in distribution):", "",
                  table([summary_row(n, j) for n, j in peers.items()], "source"), ""]
    if odeval:
        r = summary_row("ode-flow/val", odeval)
        lines += ["**(c) In distribution**: trained on every source with ODE-Flow's train split, tested on its val split:",
                  "", table([r], "test"), ""]
    text = "\n".join(lines)
    print(text)
    if args.img:
        os.makedirs(args.img, exist_ok=True)
        for png in glob.glob(os.path.join(args.out, "*.png")):
            shutil.copy(png, os.path.join(args.img, f"{recipe}-{os.path.basename(png)}"))
    if args.report:
        with open(args.report, "a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
