#!/usr/bin/env python3
"""PyTorch references for ClassifierParityTests: one training step of LeNet-5 and of a ResNet-18, and FGSM.

Run in a throw-away virtualenv (torch is never a test or build dependency of Tessera):

    python3 -m venv /tmp/xvenv && /tmp/xvenv/bin/pip install torch numpy safetensors pillow
    .build/release/tessera samples generate --out /tmp/smp
    .build/release/tessera train --task classify --model lenet5 --images /tmp/smp/shapes/train \
        --out /tmp/lenet --steps 1000 --batch 32 --lr 0.003 --schedule cosine
    /tmp/xvenv/bin/python Tests/PipelineTests/Fixtures/make_classifier_references.py \
        --lenet /tmp/lenet/best.safetensors --test samples/shapes/test \
        --out Tests/PipelineTests/Fixtures/classifier-references.safetensors

Training steps (`lenet5.*`, `resnet18.*`): weights and the batch come from a formula both sides compute exactly
(an integer hash per element, see `formula`), so only the results are stored: `loss` and the gradient of every
parameter (`grad.<name>`), computed in float64 from the float32 weights and inputs, in train mode (batch norm on
batch statistics), cross-entropy with mean reduction. LeNet-5 is Tessera's classic style (tanh, average pooling),
1x32x32, 4 classes, batch 8. The ResNet-18 is torchvision's layout (BasicBlock, [2, 2, 2, 2], 7x7 stem, max pool,
same parameter names) at a base width of 16 instead of 64 so the gradients fit in 2.8 MB, 3x64x64, 4 classes,
batch 4 (the full-width ResNet-18's train step is checked by the shared fixture `resnet18.reference`).

FGSM (`fgsm.*`): the LeNet-5 trained on the generated shapes (weights `fgsm.weight.<name>`), 200 test images
resized to 32x32 (PIL bilinear) and normalised with the checkpoint's mean/std (`fgsm.images`, `fgsm.labels`),
and PyTorch's accuracy under x' = clamp(x + eps * sign(grad_x CE), 0, 1) in pixel units (`fgsm.accuracy`, one per
`fgsm.epsilons`), the model in eval mode.
"""
import argparse
import json
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file


def formula(shape, tensor_index, scale):
    """(2u - 1) * scale as float32, u = ((i * 2654435761 + (t + 1) * 97531) mod 2^32) / 2^32."""
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.uint64)
    h = (i * np.uint64(2654435761) + np.uint64((tensor_index + 1) * 97531)) % np.uint64(1 << 32)
    u = h.astype(np.float64) / float(1 << 32)
    return ((2 * u - 1) * scale).astype(np.float32).reshape(shape)


def fill(model):
    """Every parameter (sorted by name) from the formula: weights scaled by sqrt(3 / fan_in), batch-norm weights
    1 +- 0.2, biases +- 0.1."""
    params = dict(model.named_parameters())
    for t, name in enumerate(sorted(params)):
        p = params[name]
        if name.endswith("bias"):
            v = formula(p.shape, t, 0.1)
        elif p.dim() == 1:
            v = 1 + formula(p.shape, t, 0.2)
        else:
            v = formula(p.shape, t, math.sqrt(3.0 / int(np.prod(p.shape[1:]))))
        with torch.no_grad():
            p.copy_(torch.from_numpy(v.astype(np.float32)))


class LeNet5(nn.Module):
    def __init__(self, channels, classes):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(channels, 6, 5), nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, classes)

    def forward(self, x):
        x = F.avg_pool2d(torch.tanh(self.conv1(x)), 2)
        x = F.avg_pool2d(torch.tanh(self.conv2(x)), 2)
        x = x.flatten(1)
        return self.fc3(torch.tanh(self.fc2(torch.tanh(self.fc1(x)))))


class BasicBlock(nn.Module):
    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inp != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inp, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


class ResNet18(nn.Module):
    """torchvision.models.resnet18's layout and names, base width `width`."""

    def __init__(self, channels, classes, width):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        inp = width
        for stage in range(4):
            planes = width << stage
            blocks = [BasicBlock(inp, planes, 2 if stage > 0 else 1), BasicBlock(planes, planes, 1)]
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
            inp = planes
        self.fc = nn.Linear(inp, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        for stage in range(4):
            x = getattr(self, f"layer{stage + 1}")(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def train_step(prefix, model, shape, classes, out):
    fill(model)
    x = torch.from_numpy(formula(shape, 1000, 1.5))
    y = torch.arange(shape[0]) % classes
    model = model.double().train()
    loss = F.cross_entropy(model(x.double()), y)
    loss.backward()
    out[f"{prefix}.loss"] = loss.detach().float().reshape(1)
    for name, p in model.named_parameters():
        out[f"{prefix}.grad.{name}"] = p.grad.float().contiguous()
    print(prefix, "loss", loss.item(), "parameters", sum(p.numel() for p in model.parameters()))


def fgsm(args, out):
    with safe_open(args.lenet, "pt") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}
        info = json.loads(f.metadata()["info"])
    mean = torch.tensor(info["normalizationMean"]).view(1, -1, 1, 1)
    std = torch.tensor(info["normalizationStd"]).view(1, -1, 1, 1)
    classes = info["classNames"]
    model = LeNet5(1, len(classes))
    model.load_state_dict(state)
    model.eval()
    images, labels = [], []
    for c, name in enumerate(classes):
        folder = os.path.join(args.test, name)
        for file in sorted(os.listdir(folder)):
            img = Image.open(os.path.join(folder, file)).convert("L").resize((32, 32), Image.BILINEAR)
            images.append(np.asarray(img, dtype=np.float32) / 255)
            labels.append(c)
    pixels = torch.from_numpy(np.stack(images)[:, None])
    labels = torch.tensor(labels)
    epsilons = [0.0, 0.01, 0.02, 0.05, 0.1, 0.2]
    accuracy = []
    for eps in epsilons:
        x = pixels.clone().requires_grad_(True)
        F.cross_entropy(model((x - mean) / std), labels).backward()
        adv = torch.clamp(pixels + eps * x.grad.sign(), 0, 1)
        with torch.no_grad():
            accuracy.append((model((adv - mean) / std).argmax(1) == labels).float().mean().item())
    print("fgsm", list(zip(epsilons, accuracy)))
    for k, v in state.items():
        out[f"fgsm.weight.{k}"] = v.float().contiguous()
    out["fgsm.images"] = ((pixels - mean) / std).contiguous()
    out["fgsm.labels"] = labels.float()
    out["fgsm.epsilons"] = torch.tensor(epsilons)
    out["fgsm.accuracy"] = torch.tensor(accuracy)
    out["fgsm.mean"] = mean.flatten()
    out["fgsm.std"] = std.flatten()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--lenet", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--resnet-width", type=int, default=16, help="64: torchvision's ResNet-18 itself (45 MB of gradients)")
    args = p.parse_args()
    torch.manual_seed(0)
    out = {}
    train_step("lenet5", LeNet5(1, 4), (8, 1, 32, 32), 4, out)
    train_step("resnet18", ResNet18(3, 4, args.resnet_width), (4, 3, 64, 64), 4, out)
    fgsm(args, out)
    save_file(out, args.out, metadata={"torch": torch.__version__})


if __name__ == "__main__":
    main()
