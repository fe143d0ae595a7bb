#!/usr/bin/env python3
"""Reference maps of the CAM family from the real pytorch-grad-cam package, for CAMParityTests.

Run in a throw-away virtualenv (the packages are never a test or build dependency of Tessera):

    python3 -m venv /tmp/camvenv && /tmp/camvenv/bin/pip install torch torchvision grad-cam safetensors
    /tmp/camvenv/bin/python Tests/PipelineTests/Fixtures/make_cam_references.py \
        --weights ../shared/fixtures/torch/resnet18.weights.safetensors \
        --out Tests/PipelineTests/Fixtures/cam-references.safetensors

The model is torchvision's ResNet-18 (10 classes) with the shared fixture's weights, in eval mode; the input a
seeded 1x3x112x112 normal sample; the target the predicted class (ClassifierOutputTarget; with a negative
logit, Ablation-CAM's relative drops flip sign and its map is zero, which would check nothing). For each method and layer the file
holds `METHOD.LAYER.heatmap` (pytorch-grad-cam's output: the ReLU'd map min-max scaled and resized to the input
with cv2), and `guided.gradient` / `guided-gradcam.layer4.product` (GuidedBackpropReLUModel's input gradient,
and that times the layer4 Grad-CAM heatmap, channel-first). Eigen-CAM is computed with the package's `get_2d_projection_with_sign_correction` (SVD's sign is
arbitrary; the corrected sign is the one Tessera uses).
"""
import argparse
import importlib.metadata
import json

import torch
import torchvision
from safetensors.torch import load_file, save_file

import pytorch_grad_cam
import pytorch_grad_cam.eigen_cam as eigen_cam
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection_with_sign_correction

METHODS = {
    "hirescam": pytorch_grad_cam.HiResCAM,
    "xgradcam": pytorch_grad_cam.XGradCAM,
    "eigencam": pytorch_grad_cam.EigenCAM,
    "scorecam": pytorch_grad_cam.ScoreCAM,
    "ablationcam": pytorch_grad_cam.AblationCAM,
    "gradcam": pytorch_grad_cam.GradCAM,
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--weights", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    eigen_cam.get_2d_projection = get_2d_projection_with_sign_correction
    model = torchvision.models.resnet18(num_classes=10)
    model.load_state_dict(load_file(args.weights))
    model.eval()
    torch.manual_seed(0)
    x = torch.randn(1, 3, 112, 112)
    tensors = {"input": x.contiguous()}
    with torch.no_grad():
        tensors["logits"] = model(x).contiguous()
    target = int(tensors["logits"].argmax())
    for name, cls in METHODS.items():
        for layer in ["layer3", "layer4"]:
            cam = cls(model=model, target_layers=[getattr(model, layer)])
            heat = cam(input_tensor=x, targets=[ClassifierOutputTarget(target)])[0]
            tensors[f"{name}.{layer}.heatmap"] = torch.from_numpy(heat).float().contiguous()
    # Guided Grad-CAM as the package's example makes it: GuidedBackpropReLUModel's input gradient (H x W x C) times
    # the layer4 Grad-CAM heatmap, stored channel-first.
    gb = pytorch_grad_cam.GuidedBackpropReLUModel(model=model, device="cpu")(x.clone(), target_category=target)
    heat = tensors["gradcam.layer4.heatmap"].numpy()
    tensors["guided.gradient"] = torch.from_numpy(gb.transpose(2, 0, 1).copy()).float().contiguous()
    tensors["guided-gradcam.layer4.product"] = torch.from_numpy(
        (gb * heat[:, :, None]).transpose(2, 0, 1).copy()).float().contiguous()
    meta = {
        "class": str(target),
        "versions": json.dumps({"torch": torch.__version__, "grad-cam": importlib.metadata.version("grad-cam")}),
    }
    save_file(tensors, args.out, metadata=meta)


if __name__ == "__main__":
    main()
