#!/usr/bin/env python3
"""ISBI 2012 Rand error of Tessera's instance label images, computed independently with scikit-image.

Truth: the connected cell regions (255) of each mask, 8-connected, membrane (0) ignored as the challenge ignores it.
Prediction: `tessera segment --instances ... --out OUT` label images (`OUT/instances/*.png`, 16-bit ids). Two
readings, as the question "what is the Rand error" has two answers when the prediction keeps membrane pixels:
`raw` scores the label image as it is (skimage's `adapted_rand_error`, whose predicted 0 pixels form one big
segment), `thinned` first gives every predicted 0 the id of its nearest object (the challenge's boundary
thinning). With `--instances membrane` there is no 0 left and the two agree. Needs numpy, scipy, scikit-image,
pillow (pip install scikit-image pillow in a throw-away virtualenv).

    python Benchmarks/isbi_rand.py --masks ../shared/data/isbi2012/masks --instances OUT/instances

`--prob OUT/prob` (from `segment --outputs prob`) adds the challenge's pixel error as its evaluation script
(Fiji's trainableSegmentation `PixelError`) defines it: 1 - the maximal F-score, over thresholds 0.0-1.0 in steps
of 0.1, of the pixels the truth marks as cell (> 0) against the cell probability (`*_class1.png`) above the
threshold. This, not 1 - pixel accuracy, is what the U-Net paper's "pixel error 0.0611" is.
"""
import argparse
import json
import pathlib

import numpy as np
from PIL import Image
from scipy import ndimage as ndi
from skimage.measure import label
from skimage.metrics import adapted_rand_error, variation_of_information


def thinned(pred):
    if not (pred == 0).any() or not (pred != 0).any():
        return pred
    _, (iy, ix) = ndi.distance_transform_edt(pred == 0, return_indices=True)
    return pred[iy, ix]


def pixel_error(cells, prob_path):
    """1 - max over thresholds of the F-score of cell pixels (trainableSegmentation's PixelError)."""
    raw = np.array(Image.open(prob_path)).astype(np.float64)
    prob = raw / (65535.0 if raw.max() > 255 else 255.0)
    best = 0.0
    for th in np.arange(0.0, 1.0001, 0.1):
        predicted = prob > th
        tp = float(np.sum(predicted & cells))
        fp = float(np.sum(predicted & ~cells))
        fn = float(np.sum(~predicted & cells))
        if tp > 0:
            best = max(best, 2 * tp / (2 * tp + fp + fn))
    return 1.0 - best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--masks", required=True)
    ap.add_argument("--instances", required=True)
    ap.add_argument("--prob", help="segment --outputs prob folder: adds the ISBI pixel error")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = []
    for path in sorted(pathlib.Path(args.instances).glob("*.png")):
        pred = np.array(Image.open(path)).astype(np.int64)
        truth_mask = np.array(Image.open(pathlib.Path(args.masks) / path.name))
        truth = label(truth_mask > 127, background=0, connectivity=2)
        row = {"image": path.stem}
        for name, p in [("raw", pred), ("thinned", thinned(pred))]:
            row[f"rand_error_{name}"] = float(adapted_rand_error(truth, p)[0])
        # VI over the truth's cell pixels (the challenge's foreground restriction), thinned prediction; skimage
        # gives (H(pred | truth), H(truth | pred)) in bits, Tessera's vi_split and vi_merge are in nats.
        inside = truth > 0
        split, merge = variation_of_information(truth[inside], thinned(pred)[inside])
        row["vi_split"], row["vi_merge"] = float(split) * np.log(2), float(merge) * np.log(2)
        if args.prob:
            row["pixel_error_isbi"] = pixel_error(truth_mask > 0, pathlib.Path(args.prob) / f"{path.stem}_class1.png")
        rows.append(row)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "image"}
    if args.json:
        print(json.dumps({"images": rows, "mean": mean}))
    else:
        for r in rows + [dict(image="mean", **mean)]:
            print(r["image"], " ".join(f"{k} {v:.4f}" for k, v in r.items() if k != "image"))


if __name__ == "__main__":
    main()
