#!/usr/bin/env python3
"""ONNX Runtime reference for `tessera bench` (forward only): times an ONNX model that
`pytorch_reference.py --export-onnx` wrote, with the same JSON schema and thread count as Tessera.

A separate process from PyTorch's, so that its peak RSS is ONNX Runtime's alone.
"""
import argparse
import json
import os
import resource
import statistics
import time

import numpy as np
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", required=True)
    ap.add_argument("--model", required=True, help="the .onnx file")
    ap.add_argument("--flops", type=float, required=True, help="forward FLOPs, for GFLOP/s")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    args = ap.parse_args()
    threads = int(os.environ.get("TESSERA_THREADS", os.cpu_count()))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    x = np.random.default_rng(0).standard_normal(inp.shape).astype(np.float32)
    times = []
    for i in range(args.warmup + args.repeats):
        t0 = time.perf_counter()
        session.run(None, {inp.name: x})
        dt = (time.perf_counter() - t0) * 1000
        if i >= args.warmup:
            times.append(dt)
    ms = statistics.median(times)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps([{"case": args.case, "mode": "forward", "ms": ms, "gflops": args.flops / (ms * 1e6),
                       "peak_rss_mb": rss}], indent=2))


if __name__ == "__main__":
    main()
