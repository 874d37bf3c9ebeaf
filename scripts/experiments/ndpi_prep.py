#!/usr/bin/env python3
"""Prepare nDPI labels and a by-capture split for the flowpic experiments (stdlib only).

Writes into OUT:
  labels.csv        flows_labels.csv rows (--apps: every DPI row, category column = nDPI app) with Confidence: DPI whose nDPI category maps to one of our
                    classes (MAPPING); the `category` column holds our class name. With --leave-out APP,
                    that application's rows get category = APP (so training can exclude it by name).
  train-pcaps.txt   capture paths on the training side
  test-pcaps.txt    capture paths on the test side (no capture is on both sides)
  split.txt         how the split was made, per class counts of qualifying flows on each side
Split: captures holding at least one mapped DPI flow with >= MIN_PKTS packets are grouped by their
dominant class (most packets in such flows); within each group a seeded shuffle puts
round(test_fraction * n) captures (at least 1 when n >= 2) on the test side.
With --leave-out APP: train = every capture that does not contain APP; test = captures that do.
"""
import argparse, collections, csv, os, random

# nDPI category -> our class. Unlisted categories (Network, VPN, Cloud, Game, ...) are not used.
MAPPING = {
    "VoIP": "VoIP",
    "Video": "Streaming", "Streaming": "Streaming", "Media": "Streaming", "Music": "Streaming",
    "Chat": "Chat",
    "Download": "FileTransfer", "DataTransfer": "FileTransfer", "SoftwareUpdate": "FileTransfer",
    "Web": "Web", "SocialNetwork": "Web",
}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--test-fraction", type=float, default=0.3)
    ap.add_argument("--min-pkts", type=int, default=10)
    ap.add_argument("--leave-out", default="")
    ap.add_argument("--apps", action="store_true",
                    help="application identification: keep every DPI row (any category), label = app, "
                         "stratify the split by each capture's dominant app")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    src = os.path.join(a.data_dir, "flows_labels.csv")
    with open(src, newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames
        rows = [r for r in reader if r["confidence"] == "DPI" and (a.apps or r["category"] in MAPPING)]
    for r in rows:
        if a.apps:
            r["category"] = r["app"]
        else:
            r["category"] = a.leave_out if a.leave_out and r["app"] == a.leave_out else MAPPING[r["category"]]
    with open(os.path.join(a.out, "labels.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)

    def pkts(r):
        return int(r["pkts_c2s"] or 0) + int(r["pkts_s2c"] or 0)
    big = [r for r in rows if pkts(r) >= a.min_pkts]
    per_pcap = collections.defaultdict(collections.Counter)
    for r in big:
        per_pcap[r["pcap"]][r["category"]] += pkts(r)
    # Captures listed by nDPI but absent here (WebattackXSS.pcap, see PROVENANCE.md) are left out.
    pcaps = sorted(p for p in per_pcap if os.path.exists(os.path.join(a.data_dir, "pcap", p)))
    if a.leave_out:
        test = sorted(p for p in pcaps if a.leave_out in per_pcap[p])
        train = sorted(p for p in pcaps if p not in test)
        how = f"leave-out {a.leave_out}: test = captures holding it, train = the others"
    else:
        groups = collections.defaultdict(list)
        for p in pcaps:
            groups[per_pcap[p].most_common(1)[0][0]].append(p)
        rng = random.Random(a.seed)
        test = []
        for cls in sorted(groups):
            g = sorted(groups[cls])
            rng.shuffle(g)
            k = max(1, round(a.test_fraction * len(g))) if len(g) >= 2 else 0
            test += g[:k]
        test = sorted(test)
        train = sorted(p for p in pcaps if p not in test)
        how = f"seed {a.seed}, test fraction {a.test_fraction}, stratified by dominant class"
    pdir = os.path.join(a.data_dir, "pcap")
    for name, lst in (("train", train), ("test", test)):
        with open(os.path.join(a.out, f"{name}-pcaps.txt"), "w") as f:
            f.writelines(os.path.join(pdir, p) + "\n" for p in lst)
    with open(os.path.join(a.out, "split.txt"), "w") as f:
        f.write(f"{how}\ncaptures: train {len(train)}, test {len(test)}\n")
        f.write("qualifying flows (DPI, >= %d pkts) per class: class train test\n" % a.min_pkts)
        side = {p: "train" for p in train} | {p: "test" for p in test}
        cnt = collections.Counter((r["category"], side[r["pcap"]]) for r in big if r["pcap"] in side)
        for c in sorted({c for c, _ in cnt}):
            f.write(f"  {c} {cnt[(c, 'train')]} {cnt[(c, 'test')]}\n")
    print(open(os.path.join(a.out, "split.txt")).read(), end="")

if __name__ == "__main__":
    main()
