#!/usr/bin/env python3
"""Runs `tessera bench`, PyTorch and ONNX Runtime (forward only) on the same cases and prints all with ratios.

Each (case, mode, tool) runs in a fresh process, the tools alternating case by case and round by round, so
that peak RSS is per case and slow phases of a shared machine hit every tool alike; each tool keeps its best
median over the rounds. With `--isa native,avx2`, the whole comparison runs once on the CPU's own instruction set
and once more with Tessera forced to AVX2 (TESSERA_ISA=avx2) and PyTorch's oneDNN limited the same way
(ONEDNN_MAX_CPU_ISA=AVX2). ONNX Runtime has no such switch: it always runs on the native ISA.
Usage:
    python Benchmarks/compare.py --tessera .build/release/tessera [--case NAME] [--repeats 5] [--rounds 3]
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
UNET = ["unet-w64-b1-512", "unet-w32-b4-256", "unet-w16-b1-512"]
RESNET = ["resnet18-b1-224", "resnet18-b8-224", "resnet50-b1-224", "resnet50-b8-224"]
CLASSIFIERS = ["lenet5-b64-32"]
CASES = UNET + RESNET + CLASSIFIERS
# Cases timed training as well as forward: the U-Nets, and the classifiers `tessera train --task classify` trains.
TRAINED = UNET + ["resnet18-b8-224"] + CLASSIFIERS


def run_json(cmd, env):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out)[0]


def onnx_model(case, folder):
    """The case's ONNX file, exported once by the PyTorch reference."""
    path = os.path.join(folder, f"{case}.onnx")
    if not os.path.exists(path):
        os.makedirs(folder, exist_ok=True)
        subprocess.run([sys.executable, os.path.join(HERE, "pytorch_reference.py"), "--case", case,
                        "--export-onnx", path + ".tmp"], check=True, capture_output=True)
        os.replace(path + ".tmp", path)
    return path


def compare(args, isa):
    env = dict(os.environ)
    if isa != "native":
        env["TESSERA_ISA"] = isa
        env["ONEDNN_MAX_CPU_ISA"] = isa.upper().replace("AVX512", "AVX512_CORE")
    cases = [args.case] if args.case else CASES
    rows = []
    for case in cases:
        modes = [args.mode] if args.mode else (["forward", "train"] if case in TRAINED else ["forward"])
        for mode in modes:
            best = {}
            for _ in range(args.rounds):
                tools = [
                    ("tessera", [args.tessera, "bench", "--case", case, "--mode", mode,
                                 "--repeats", str(args.repeats), "--json"]),
                    ("pytorch", [sys.executable, os.path.join(HERE, "pytorch_reference.py"), "--case", case,
                                 "--mode", mode, "--repeats", str(args.repeats)]),
                ]
                if mode == "forward" and not args.no_onnx:
                    tools.append(("onnxruntime", None))  # command built once Tessera's FLOP count is known
                for tool, cmd in tools:
                    if tool == "onnxruntime":
                        flops = best["tessera"]["gflops"] * best["tessera"]["ms"] * 1e6
                        cmd = [sys.executable, os.path.join(HERE, "onnxruntime_reference.py"), "--case", case,
                               "--model", onnx_model(case, args.onnx_dir), "--flops", str(flops),
                               "--repeats", str(args.repeats)]
                    r = run_json(cmd, env)
                    if tool not in best or r["ms"] < best[tool]["ms"]:
                        best[tool] = r
            t = best["tessera"]
            row = {"isa": isa, "case": case, "mode": mode}
            for tool, r in best.items():
                row[f"{tool}_ms"] = r["ms"]
                row[f"{tool}_gflops"] = r["gflops"]
                row[f"{tool}_rss_mb"] = r["peak_rss_mb"]
                if tool != "tessera":
                    row[f"{tool}_over_tessera"] = r["ms"] / t["ms"]
            rows.append(row)
            if not args.json:
                line = f"{isa:7} {case:16} {mode:8} tessera {t['ms']:8.1f} ms ({t['peak_rss_mb']:5.0f} MB)"
                for tool in ("pytorch", "onnxruntime"):
                    if tool in best:
                        r = best[tool]
                        line += f"  {tool} {r['ms']:8.1f} ms ({r['peak_rss_mb']:5.0f} MB) {tool}/tessera {r['ms'] / t['ms']:.2f}x"
                print(line, flush=True)
    return rows


def markdown(rows):
    lines = ["| ISA | case | mode | Tessera ms | PyTorch ms | ONNX Runtime ms | PyTorch / Tessera | ONNX Runtime / Tessera "
             "| Tessera MB | PyTorch MB | ONNX Runtime MB |", "| --- | --- | --- |" + " ---: |" * 8]
    for r in rows:
        f = lambda k, fmt="{:.0f}": fmt.format(r[k]) if k in r else ""
        lines.append(f"| {r['isa']} | {r['case']} | {r['mode']} | {f('tessera_ms')} | {f('pytorch_ms')} | "
                     f"{f('onnxruntime_ms')} | {f('pytorch_over_tessera', '{:.2f}')} | "
                     f"{f('onnxruntime_over_tessera', '{:.2f}')} | {f('tessera_rss_mb')} | {f('pytorch_rss_mb')} | "
                     f"{f('onnxruntime_rss_mb')} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tessera", required=True)
    ap.add_argument("--case", choices=CASES)
    ap.add_argument("--mode", choices=["forward", "train"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1, help="alternate the tools this many times; best median kept")
    ap.add_argument("--isa", default="native,avx2", help="comma-separated: native, avx2, avx512")
    ap.add_argument("--no-onnx", action="store_true", help="leave ONNX Runtime out")
    ap.add_argument("--onnx-dir", default=os.path.join(os.path.dirname(sys.executable), "..", "onnx-models"))
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--markdown", action="store_true", help="also print a Markdown table at the end")
    args = ap.parse_args()
    rows = []
    for isa in args.isa.split(","):
        rows += compare(args, isa)
    if args.json:
        print(json.dumps(rows, indent=2))
    if args.markdown:
        print(markdown(rows))


if __name__ == "__main__":
    main()
