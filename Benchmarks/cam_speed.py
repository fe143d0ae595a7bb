#!/usr/bin/env python3
"""Time per image of Grad-CAM and Score-CAM (`tessera explain` against pytorch-grad-cam) and of LIME (against the
lime package: SLIC with 100 segments and compactness 10, 1000 samples, mean fill, 16 per batch) on the same model
(torchvision ResNet-18 with the shared fixture's weights, 10 classes), the same image and layer (layer4), the
predicted class; alternating, a fresh process per run. Tessera's time is the report's per-image `seconds`
(decode to the written float map, `--outputs raw --raw-format npy`); pytorch-grad-cam's the call of the CAM object (model already loaded), both after
one warm-up image in the same process (lime: the explain_instance call, one warm-up). The image is scikit-image's
astronaut resized. `--isa avx2` runs Tessera with TESSERA_ISA=avx2 and the peer with ONEDNN_MAX_CPU_ISA=AVX2.
Run with a virtualenv holding torch, torchvision, grad-cam, lime, scikit-image, safetensors:

    V/bin/python Benchmarks/cam_speed.py --tessera .build/release/tessera \
        --weights ../shared/fixtures/torch/resnet18.weights.safetensors --rounds 3 [--methods gradcam,scorecam,lime]
"""
import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile

PEER = r"""
import sys, time, torch, torchvision, numpy as np
from PIL import Image
from safetensors.torch import load_file
import pytorch_grad_cam
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
torch.set_num_threads(int(sys.argv[4]))
model = torchvision.models.resnet18(num_classes=10); model.load_state_dict(load_file(sys.argv[1])); model.eval()
img = np.asarray(Image.open(sys.argv[2]).convert("RGB"), dtype=np.float32) / 255
mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
x = torch.from_numpy(((img - mean) / std).transpose(2, 0, 1)[None].astype(np.float32))
cls_index = int(model(x).argmax())
if sys.argv[3] == "lime":
    from lime import lime_image
    from lime.wrappers.scikit_image import SegmentationAlgorithm
    def classify(batch):
        t = torch.from_numpy(((batch - mean) / std).transpose(0, 3, 1, 2).astype(np.float32))
        with torch.no_grad():
            return torch.softmax(model(t), 1).numpy()
    explainer = lime_image.LimeImageExplainer(random_state=0)
    slic = SegmentationAlgorithm("slic", n_segments=100, compactness=10, start_label=0)
    def run():
        explainer.explain_instance(img.astype(np.float64), classify, labels=(cls_index,), top_labels=None,
                                   hide_color=None, num_samples=1000, batch_size=16, segmentation_fn=slic)
else:
    cls = {"gradcam": pytorch_grad_cam.GradCAM, "scorecam": pytorch_grad_cam.ScoreCAM}[sys.argv[3]]
    cam = cls(model=model, target_layers=[model.layer4])
    target = [ClassifierOutputTarget(cls_index)]
    def run():
        cam(input_tensor=x, targets=target)
run()
t = time.perf_counter(); run(); print(time.perf_counter() - t)
"""


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tessera", default=".build/release/tessera")
    p.add_argument("--weights", required=True)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--methods", default="gradcam,scorecam,lime")
    p.add_argument("--isa", default="native", choices=["native", "avx2"])
    args = p.parse_args()
    import numpy as np
    from PIL import Image
    work = tempfile.mkdtemp()
    rng = np.random.default_rng(0)
    images = os.path.join(work, "in")
    os.makedirs(images)
    # Two copies: Tessera's first image warms up, the second is timed.
    from skimage import data
    pixels = np.asarray(Image.fromarray(data.astronaut()).resize((args.size, args.size), Image.BILINEAR))
    for name in ["a", "b"]:
        Image.fromarray(pixels).save(os.path.join(images, name + ".png"))
    env = dict(os.environ, TESSERA_THREADS=str(args.threads))
    peer_env = dict(os.environ)
    if args.isa == "avx2":
        env["TESSERA_ISA"] = "avx2"
        peer_env["ONEDNN_MAX_CPU_ISA"] = "AVX2"
    print(f"isa {args.isa}; method round tessera_s peer_s ratio(peer/tessera)")
    for method in args.methods.split(","):
        for r in range(args.rounds):
            out = os.path.join(work, f"out-{method}-{r}")
            subprocess.run([args.tessera, "explain", images, "--model", args.weights, "--out", out, "--method",
                            method, "--layer", "layer4", "--outputs", "raw", "--raw-format", "npy", "--quiet"],
                           check=True, env=env)
            with open(os.path.join(out, "report.csv")) as f:
                rows = {row["path"]: float(row["seconds"]) for row in csv.DictReader(f)}
            tessera = rows["b.png"]
            peer = float(subprocess.run([sys.executable, "-c", PEER, args.weights, os.path.join(images, "a.png"),
                                         method, str(args.threads)], check=True, capture_output=True,
                                        text=True, env=peer_env).stdout.split()[-1])
            print(f"{method} {r + 1} {tessera:.4f} {peer:.4f} {peer / tessera:.2f}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
