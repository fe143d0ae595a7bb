#!/usr/bin/env python3
"""PyTorch reference for `tessera train`: the ISBI recipe of issue 4 (U-Net width 32, 256x256 crops, flips + rot90,
Adam 1e-3, batch 4, cross-entropy) on the same split, timed per training step, with the held-out metrics.

A benchmark dependency only (torch, numpy, pillow in a throw-away virtualenv). Usage:
  train_reference.py --data ../shared/data/isbi2012 --val-names slice03,slice07,... --steps 400 [--json]
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_reference import UNet  # noqa: E402


def load(folder, name):
    img = np.asarray(Image.open(os.path.join(folder, "images", name + ".png")).convert("L"), dtype=np.float32) / 255
    mask = (np.asarray(Image.open(os.path.join(folder, "masks", name + ".png")).convert("L")) >= 128).astype(np.int64)
    return img, mask


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--val-names", required=True, help="comma-separated stems held out (Tessera's config.json)")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("TESSERA_THREADS", os.cpu_count())))
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    names = sorted(f[:-4] for f in os.listdir(os.path.join(a.data, "images")) if f.endswith(".png"))
    val = set(a.val_names.split(","))
    train = [n for n in names if n not in val]
    mean = float(np.mean([load(a.data, n)[0].mean() for n in train]))
    std = float(np.sqrt(np.mean([(load(a.data, n)[0] ** 2).mean() for n in train]) - mean ** 2))
    model = UNet(1, 2, 4, a.width)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    step, order, times = 0, [], []
    while step < a.steps:
        if len(order) < a.batch:
            order = list(rng.permutation(train))
        batch, order = order[:a.batch], order[a.batch:]
        t0 = time.perf_counter()
        xs, ys = [], []
        for n in batch:
            img, mask = load(a.data, n)
            y0, x0 = rng.integers(0, img.shape[0] - a.crop + 1), rng.integers(0, img.shape[1] - a.crop + 1)
            img, mask = img[y0:y0 + a.crop, x0:x0 + a.crop], mask[y0:y0 + a.crop, x0:x0 + a.crop]
            if rng.random() < 0.5: img, mask = img[:, ::-1], mask[:, ::-1]
            if rng.random() < 0.5: img, mask = img[::-1], mask[::-1]
            if rng.random() < 0.5:
                k = int(rng.integers(1, 4)); img, mask = np.rot90(img, k), np.rot90(mask, k)
            xs.append((img - mean) / std)
            ys.append(mask)
        x = torch.from_numpy(np.ascontiguousarray(np.stack(xs))[:, None].astype(np.float32))
        y = torch.from_numpy(np.ascontiguousarray(np.stack(ys)))
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
        step += 1
        if not a.json and step % 10 == 0:
            print(f"step {step} loss {loss.item():.4f} {np.mean(times[-10:]):.2f} s/step", flush=True)
    model.eval()
    conf = np.zeros((2, 2), dtype=np.int64)
    with torch.no_grad():
        for n in sorted(val):
            img, mask = load(a.data, n)
            pred = model(torch.from_numpy(((img - mean) / std)[None, None].astype(np.float32))).argmax(1)[0].numpy()
            for t in (0, 1):
                for p in (0, 1):
                    conf[t, p] += int(((mask == t) & (pred == p)).sum())
    acc = float(np.trace(conf) / conf.sum())
    dice0 = float(2 * conf[0, 0] / (conf[0].sum() + conf[:, 0].sum()))
    out = {"steps": a.steps, "seconds_per_step": float(np.mean(times)), "median_seconds_per_step": float(np.median(times)),
           "pixel_accuracy": acc, "dice_0": dice0, "torch": torch.__version__, "threads": torch.get_num_threads()}
    print(json.dumps(out) if a.json else out)


if __name__ == "__main__":
    main()
