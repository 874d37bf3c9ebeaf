#!/usr/bin/env python3
"""Per-flow table of flowpic verdict lines (flowpicd or `flowpic classify` JSON lines).

  flowpicd -c configs/replay.yaml | scripts/verdict_table.py          # lines through, then the table
  flowpic classify CAPTURE | scripts/verdict_table.py --table-only

Reads JSON lines from stdin, copies them to stdout as they come (unless --table-only), and at
the end prints one row per flow: windows, its flow verdict (the class the appliance acts on:
the mean of the windows' probabilities, as the last line's flow_verdict says), the windows'
verdicts by class, their mean and lowest confidence.
Lines that are not verdicts are copied and otherwise ignored.
"""
import argparse
import collections
import json
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table-only", action="store_true", help="do not copy the JSON lines, print only the table")
    args = ap.parse_args()
    flows = collections.OrderedDict()
    for line in sys.stdin:
        if not args.table_only:
            sys.stdout.write(line)
            sys.stdout.flush()
        try:
            v = json.loads(line)
            flow, cls, conf = v["flow"], v["class"], float(v["confidence"])
        except (ValueError, KeyError, TypeError):
            continue
        f = flows.setdefault(flow, {"classes": collections.Counter(), "conf": [], "flow": "-"})
        f["classes"][cls] += 1
        f["conf"].append(conf)
        fv = v.get("flow_verdict")
        if isinstance(fv, dict) and "class" in fv and "confidence" in fv:
            f["flow"] = f"{fv['class']} {float(fv['confidence']):.2f}"
    if not flows:
        print("no verdicts", file=sys.stderr)
        return
    width = max(len(k) for k in flows)
    print()
    fwidth = max(len("flow verdict"), max(len(f["flow"]) for f in flows.values()))
    print(f"{'flow':<{width}}  {'windows':>7}  {'flow verdict':<{fwidth}}  {'mean conf':>9}  {'lowest':>6}  window verdicts")
    for flow, f in flows.items():
        n = sum(f["classes"].values())
        verdicts = ", ".join(f"{c} {k}" for c, k in f["classes"].most_common())
        print(f"{flow:<{width}}  {n:>7}  {f['flow']:<{fwidth}}  {sum(f['conf']) / n:>9.2f}  {min(f['conf']):>6.2f}  {verdicts}")


if __name__ == "__main__":
    main()
