#!/usr/bin/env python3
"""An early count-window verdict refined by a time-window verdict, scored per connection.

Reads the per-connection evidence of two `flowpic eval --flows-csv` runs on the same captures:
one of a count-window model (the early verdict, after 20 packets) and one of a time-window
model (the verdict after 15 s of the connection). A connection's verdict is
  count     the argmax of its count windows' mean probabilities (what the appliance says first);
  time      the time model's verdict, for connections that lasted long enough to have one;
  refined   the time verdict where there is one, else the count verdict (what it says in the end);
  mixed     the argmax of the mean of both means, where both exist, else the count verdict.
Connections are those of the count run (every connection gets an early verdict); the time run
only adds evidence. Classes are matched by name: a class the time model lacks has probability 0
in its evidence (a time corpus can miss classes that only one-direction or count sources hold).

  refine.py COUNT.csv TIME.csv [--label NAME]
"""
import argparse
import csv
import sys


def read(path):
    with open(path, newline="") as f:
        r = csv.reader(f)
        head = next(r)
        classes = [h[2:] for h in head[4:]]
        rows = {}
        for row in r:
            rows[(row[0], row[1])] = (row[2], int(row[3]), [float(x) for x in row[4:]])
        return classes, rows


def argmax(p):
    return max(range(len(p)), key=lambda i: p[i])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("count_csv")
    ap.add_argument("time_csv")
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    cc, count = read(a.count_csv)
    tc, time = read(a.time_csv)
    if not set(tc) <= set(cc):
        sys.exit(f"refine.py: the time model has classes the count model lacks: {sorted(set(tc) - set(cc))}")
    # The time model's probabilities in the count model's class order.
    time = {k: (t, n, [p[tc.index(c)] if c in tc else 0.0 for c in cc]) for k, (t, n, p) in time.items()}
    n = len(count)
    if n == 0:
        sys.exit("refine.py: no connections in " + a.count_csv)
    hits = {"count": 0, "refined": 0, "mixed": 0}
    with_time = time_hits = count_hits_there = 0
    for key, (truth, _, p) in count.items():
        t = cc.index(truth)
        c_ok = argmax(p) == t
        hits["count"] += c_ok
        if key in time:
            with_time += 1
            q = time[key][2]
            t_ok = argmax(q) == t
            time_hits += t_ok
            count_hits_there += c_ok
            hits["refined"] += t_ok
            hits["mixed"] += argmax([x + y for x, y in zip(p, q)]) == t
        else:
            hits["refined"] += c_ok
            hits["mixed"] += c_ok
    pct = lambda x, d: f"{100.0 * x / d:.1f}" if d else "-"
    print(f"{a.label}\t{n}\t{pct(hits['count'], n)}\t{with_time}\t{pct(count_hits_there, with_time)}\t"
          f"{pct(time_hits, with_time)}\t{pct(hits['refined'], n)}\t{pct(hits['mixed'], n)}")


if __name__ == "__main__":
    main()
