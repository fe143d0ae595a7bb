#!/usr/bin/env python3
"""PyTorch reference for `tessera bench`: the same U-Net, the same cases, the same JSON schema.

Runs on the CPU with the same thread count as Tessera (TESSERA_THREADS or all cores).
A benchmark dependency only: install torch into a throw-away virtualenv (`make bench` does).
"""
import argparse
import json
import os
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CASES = {
    "unet-w64-b1-512": (64, 1, 512),
    "unet-w32-b4-256": (32, 4, 256),
    "unet-w16-b1-512": (16, 1, 512),
    "resnet18-b1-224": (18, 1, 224),
    "resnet18-b8-224": (18, 8, 224),
    "resnet50-b1-224": (50, 1, 224),
    "resnet50-b8-224": (50, 8, 224),
    "lenet5-b64-32": (0, 64, 32),
}
# Multiply-adds of one 224x224 ResNet forward (torchvision's published counts), as `tessera bench` uses.
RESNET_MACS = {18: 1.814e9, 50: 4.089e9}


def double_conv(cin, cout):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding="same", bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding="same", bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class UpBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cout, 2, stride=2)
        self.conv = double_conv(2 * cout, cout)

    def forward(self, x, skip):
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class UNet(nn.Module):
    """Same structure and parameter names as Tessera's UNet (depth 4, same padding)."""

    def __init__(self, in_channels=1, classes=2, depth=4, width=64):
        super().__init__()
        widths = [width << i for i in range(depth + 1)]
        chans = [in_channels] + widths
        self.encoder = nn.Sequential(*[double_conv(chans[i], chans[i + 1]) for i in range(depth + 1)])
        self.decoder = nn.Sequential(*[UpBlock(widths[l + 1], widths[l]) for l in reversed(range(depth))])
        self.head = nn.Conv2d(width, classes, 1)

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.encoder):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        skips.pop()
        for block in self.decoder:
            x = block(x, skips.pop())
        return self.head(x)


def forward_flops(width, batch, size, depth=4, in_channels=1, classes=2):
    widths = [width << i for i in range(depth + 1)]
    total, cin = 0, in_channels
    conv = lambda a, b, k, p: 2 * a * b * k * k * p
    for lvl, w in enumerate(widths):
        p = (size >> lvl) ** 2
        total += conv(cin, w, 3, p) + conv(w, w, 3, p)
        cin = w
    for lvl in reversed(range(depth)):
        p = (size >> lvl) ** 2
        w = widths[lvl]
        total += 2 * widths[lvl + 1] * w * 4 * (p // 4) + conv(2 * w, w, 3, p) + conv(w, w, 3, p)
    total += conv(width, classes, 1, size * size)
    return total * batch


# Multiply-adds of one LeNet-5 forward (conv 6x25x28x28 + 16x150x10x10, fc 400x120 + 120x84 + 84x10).
LENET_MACS = 117_600 + 240_000 + 48_000 + 10_080 + 840


class LeNet5(torch.nn.Module):
    """Tessera's classic LeNet-5: tanh, 2x2 average pooling, 1x32x32 input, 10 classes."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = torch.nn.Conv2d(1, 6, 5), torch.nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = torch.nn.Linear(400, 120), torch.nn.Linear(120, 84), torch.nn.Linear(84, 10)

    def forward(self, x):
        x = F.avg_pool2d(torch.tanh(self.conv1(x)), 2)
        x = F.avg_pool2d(torch.tanh(self.conv2(x)), 2).flatten(1)
        return self.fc3(torch.tanh(self.fc2(torch.tanh(self.fc1(x)))))


def build(name):
    """The case's model (eval mode), an input batch, a target and the forward pass's FLOPs."""
    width, batch, size = CASES[name]
    torch.manual_seed(0)
    if name.startswith("lenet5"):
        model = LeNet5()
        return model, torch.randn(batch, 1, size, size), torch.randint(0, 10, (batch,)), 2 * LENET_MACS * batch
    if name.startswith("resnet"):
        import torchvision

        model = getattr(torchvision.models, f"resnet{width}")()
        x = torch.randn(batch, 3, size, size)
        return model, x, torch.randint(0, 1000, (batch,)), 2 * RESNET_MACS[width] * batch
    return UNet(width=width), torch.randn(batch, 1, size, size), torch.randint(0, 2, (batch, size, size)), \
        forward_flops(width, batch, size)


def export_onnx(name, path):
    """Writes the case's model, eval mode, with its input shape fixed, as ONNX (opset 17)."""
    model, x, _, _ = build(name)
    model.eval()
    torch.onnx.export(model, (x,), path, input_names=["x"], output_names=["y"], opset_version=17, dynamo=False)


def run(name, mode, warmup, repeats):
    model, x, target, flops = build(name)
    if mode == "train":
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        work = 3 * flops

        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), target).backward()
            opt.step()
    else:
        model.eval()
        work = flops

        def step():
            with torch.inference_mode():
                model(x)
    times = []
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        step()
        dt = (time.perf_counter() - t0) * 1000
        if i >= warmup:
            times.append(dt)
    ms = statistics.median(times)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"case": name, "mode": mode, "ms": ms, "gflops": work / (ms * 1e6), "peak_rss_mb": rss}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", choices=sorted(CASES), help="one case (default: all)")
    ap.add_argument("--mode", choices=["forward", "train", "both"], default="both")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--export-onnx", metavar="PATH", help="write the case's model as ONNX instead of timing it")
    args = ap.parse_args()
    if args.export_onnx:
        export_onnx(args.case, args.export_onnx)
        return
    threads = int(os.environ.get("TESSERA_THREADS", os.cpu_count()))
    torch.set_num_threads(threads)
    cases = [args.case] if args.case else list(CASES)
    modes = ["forward", "train"] if args.mode == "both" else [args.mode]
    print(json.dumps([run(c, m, args.warmup, args.repeats) for c in cases for m in modes], indent=2))


if __name__ == "__main__":
    main()
