#!/usr/bin/env python3
"""Runs `tessera bench` and the PyTorch reference on the same cases and prints both with the ratio.

Each (case, mode) runs in a fresh process for each tool, alternating between the two, so that peak RSS is
per case and slow phases of a shared machine hit both sides alike. Usage:
    python Benchmarks/compare.py --tessera .build/release/tessera [--case NAME] [--repeats 5] [--rounds 1]
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = ["unet-w64-b1-512", "unet-w32-b4-256", "unet-w16-b1-512"]


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tessera", required=True)
    ap.add_argument("--case", choices=CASES)
    ap.add_argument("--mode", choices=["forward", "train"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1, help="alternate the two tools this many times; best median kept")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    cases = [args.case] if args.case else CASES
    modes = [args.mode] if args.mode else ["forward", "train"]
    rows = []
    for case in cases:
        for mode in modes:
            best = {}
            for _ in range(args.rounds):
                for tool, cmd in (
                    ("tessera", [args.tessera, "bench", "--case", case, "--mode", mode,
                                 "--repeats", str(args.repeats), "--json"]),
                    ("pytorch", [sys.executable, os.path.join(HERE, "pytorch_reference.py"), "--case", case,
                                 "--mode", mode, "--repeats", str(args.repeats)]),
                ):
                    r = run_json(cmd)
                    if tool not in best or r["ms"] < best[tool]["ms"]:
                        best[tool] = r
            t, p = best["tessera"], best["pytorch"]
            row = {"case": case, "mode": mode, "tessera_ms": t["ms"], "pytorch_ms": p["ms"],
                   "speedup": p["ms"] / t["ms"], "tessera_gflops": t["gflops"], "pytorch_gflops": p["gflops"],
                   "tessera_rss_mb": t["peak_rss_mb"], "pytorch_rss_mb": p["peak_rss_mb"]}
            rows.append(row)
            if not args.json:
                print(f"{case:16} {mode:8} tessera {t['ms']:9.1f} ms ({t['gflops']:6.1f} GFLOP/s, {t['peak_rss_mb']:6.0f} MB)"
                      f"   pytorch {p['ms']:9.1f} ms ({p['gflops']:6.1f} GFLOP/s, {p['peak_rss_mb']:6.0f} MB)"
                      f"   pytorch/tessera {row['speedup']:.2f}x", flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
