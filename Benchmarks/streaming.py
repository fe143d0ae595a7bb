#!/usr/bin/env python3
"""Peak memory and speed of `tessera segment` on generated 16-bit whole-slide TIFFs of growing size, and the
time of a run resumed after a kill half-way. Python standard library only; each run is a fresh process whose
peak RSS comes from wait4.

    python3 Benchmarks/streaming.py --tessera .build/release/tessera --model MODEL.safetensors \
        --sizes 4096x4096,16384x16384,60000x40000 --resume 16384x16384 --folder /tmp/slides
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time


def run(cmd, kill_when=None):
    """Runs cmd; returns (seconds, peak RSS in MB, exit status). kill_when() polled every 50 ms kills it."""
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while kill_when is not None:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if kill_when():
            os.kill(proc.pid, signal.SIGKILL)
            kill_when = None
        time.sleep(0.05)
    else:
        pid, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode(errors="replace")
    return time.time() - t0, usage.ru_maxrss / 1024, status, err


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tessera", default=".build/release/tessera")
    p.add_argument("--model", required=True)
    p.add_argument("--sizes", default="4096x4096,16384x16384,60000x40000")
    p.add_argument("--resume", default="16384x16384", help="size of the kill-and-resume run ('' skips it)")
    p.add_argument("--folder", default="/tmp/tessera-slides")
    p.add_argument("--args", default="--tile 512 --overlap 0.25", help="segment options, the same for every size")
    a = p.parse_args()
    os.makedirs(a.folder, exist_ok=True)
    extra = a.args.split()
    rows = []
    for size in a.sizes.split(","):
        w, h = map(int, size.split("x"))
        slide = os.path.join(a.folder, f"slide-{size}.tif")
        if not os.path.exists(slide):
            subprocess.run([a.tessera, "samples", "slide", "--size", size, "--out", slide], check=True)
        out = os.path.join(a.folder, f"out-{size}")
        shutil.rmtree(out, ignore_errors=True)
        seconds, rss, status, err = run([a.tessera, "segment", slide, "--model", a.model, "--out", out] + extra)
        if status != 0:
            sys.exit(f"segment {size} failed: {err}")
        mpx = w * h / 1e6
        rows.append((size, os.path.getsize(slide) / 1e6, seconds, rss, mpx / seconds))
        print(f"{size}: {seconds:.1f} s, peak RSS {rss:.0f} MB, {mpx / seconds:.2f} megapixels/s", flush=True)
    print("\n| image | file MB | seconds | images/s | megapixels/s | peak RSS MB | RSS / smallest |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for size, mb, seconds, rss, rate in rows:
        print(f"| {size} | {mb:.0f} | {seconds:.1f} | {1 / seconds:.4f} | {rate:.2f} | {rss:.0f} | {rss / rows[0][3]:.2f} |")
    if a.resume:
        w, h = map(int, a.resume.split("x"))
        slide = os.path.join(a.folder, f"slide-{a.resume}.tif")
        out = os.path.join(a.folder, f"resume-{a.resume}")
        shutil.rmtree(out, ignore_errors=True)
        cmd = [a.tessera, "segment", slide, "--model", a.model, "--out", out] + extra
        full = next(r[2] for r in rows if r[0] == a.resume)
        progress = os.path.join(out, f".slide-{a.resume}.tif.progress")

        def half_done():
            try:
                with open(progress) as f:
                    return json.load(f)["rows"] >= h // 2
            except (OSError, ValueError, KeyError):
                return False

        killed, _, _, _ = run(cmd, kill_when=half_done)
        with open(progress) as f:
            done = json.load(f)["rows"]
        resumed, rss, status, err = run(cmd)
        if status != 0:
            sys.exit(f"resumed run failed: {err}")
        print(f"\nresume {a.resume}: killed after {killed:.1f} s with {done} of {h} rows done; the resumed run took "
              f"{resumed:.1f} s = {resumed / full:.2f} of an uninterrupted run ({full:.1f} s), peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
