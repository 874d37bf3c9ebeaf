#!/usr/bin/python3
"""Peer for `flowpic-bench infer`: the same LeNet (mini-FlowPic) in PyTorch, inference only.

Run with Debian's python3 (python3-torch links the same oneDNN as flowpic):
    /usr/bin/python3 bench/torch_lenet.py --batch 64 --threads 1 --runs 3
Prints one line per run and a median, in thousands of pictures per second, for eager mode (as
most users run it) and for TorchScript with torch.jit.optimize_for_inference (the fastest path
torch offers on CPU). Debian's torch does its fully connected layers through the system BLAS,
which is netlib's reference BLAS unless another is selected: bench/run.sh runs this script
once as installed and once with OpenBLAS on LD_LIBRARY_PATH, and says which BLAS it loaded.
"""
import os
import argparse
import json
import statistics
import sys
import time

try:
    import torch
    from torch import nn
except ImportError:
    print("torch_lenet: python3-torch is not installed (apt-get install python3-torch): peer skipped")
    sys.exit(0)


def lenet(resolution: int, classes: int) -> nn.Module:
    # conv 6@5x5, ReLU, max-pool 2, conv 16@5x5, ReLU, (dropout), max-pool 2, FC 120, ReLU, FC 84,
    # ReLU, (dropout), FC classes, softmax: infer/model.cpp's kLeNet geometry (no padding).
    p2 = ((resolution - 4) // 2 - 4) // 2
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.Dropout(0.25), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * p2 * p2, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Dropout(0.5), nn.Linear(84, classes), nn.Softmax(dim=1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--classes", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0, help="per run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", help="also write the figures here")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = lenet(a.resolution, a.classes).eval()
    x = (torch.rand(a.batch, 1, a.resolution, a.resolution) < 0.15).float() * torch.rand(
        a.batch, 1, a.resolution, a.resolution)
    blas = "?"
    try:
        with open("/proc/self/maps") as maps:
            blas = sorted({ln.split()[-1] for ln in maps if "libblas" in ln or "openblas" in ln})
    except OSError:
        pass
    results = {}
    with torch.inference_mode():
        variants = [("eager", model),
                    ("jit optimize_for_inference", torch.jit.optimize_for_inference(torch.jit.trace(model, x)))]
        for name, fn in variants:
            for _ in range(5):
                fn(x)  # warm-up
            rates, shares = [], []
            for _ in range(a.runs):
                n, t0, c0 = 0, time.perf_counter(), time.process_time()
                while time.perf_counter() - t0 < a.seconds:
                    fn(x)
                    n += a.batch
                wall = time.perf_counter() - t0
                rates.append(n / wall / 1e3)
                shares.append((time.process_time() - c0) / wall)
                print(f"  torch {torch.__version__} {name} lenet {a.resolution}x{a.resolution} batch {a.batch}, "
                      f"{a.threads} thr: {rates[-1]:.3f} k pictures/s (cpu {shares[-1]:.2f})", flush=True)
            med = statistics.median(rates)
            per_cpu = statistics.median(r / c for r, c in zip(rates, shares) if c > 0)
            results[name] = {"values": rates, "cpu_share": shares, "median": med, "per_cpu_median": per_cpu}
            print(f"peer: torch {name} lenet forward batch {a.batch}, {a.threads} thr  median {med:.3f} "
                  f"k pictures/s (min {min(rates):.3f} max {max(rates):.3f}, cpu {statistics.median(shares):.2f}, "
                  f"per cpu-s {per_cpu:.3f})", flush=True)
    print(f"  blas loaded: {' '.join(blas) if isinstance(blas, list) else blas}; "
          f"LD_LIBRARY_PATH={os.environ.get('LD_LIBRARY_PATH', '')}; mkldnn {torch.backends.mkldnn.is_available()}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"peer": "torch", "version": torch.__version__, "batch": a.batch, "threads": a.threads,
                       "blas": blas, "unit": "k pictures/s", "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
