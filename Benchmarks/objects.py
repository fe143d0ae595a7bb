#!/usr/bin/env python3
"""Objects of a large label mask: Tessera (`tessera bench --objects`) beside scikit-image on the same mask, in
alternating fresh processes. Tessera generates the mask (ellipses of two classes) and saves it as .npy; the
scikit-image side labels it (`label`, 8-connectivity, one value per class) and measures what `objects/*.csv`
holds (`regionprops_table`: area, centroid, bbox, equivalent diameter, eccentricity, intensity mean/min/max), and
splits touching objects the usual way (`distance_transform_edt`, `h_maxima` with h = 2, `watershed`). Needs
numpy, scipy and scikit-image (the benchmark virtualenv: `make bench` makes it; pip install scikit-image).

    .build-bench-venv/bin/python Benchmarks/objects.py --tessera .build/release/tessera --size 8192 --count 30000
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time

SKIMAGE = r"""
import json, sys, time
import numpy as np
from scipy import ndimage as ndi
from skimage.measure import label, regionprops_table
from skimage.morphology import h_maxima
from skimage.segmentation import watershed
mask = np.load(sys.argv[1]).astype(np.uint8)
intensity = np.load(sys.argv[2])
t0 = time.perf_counter()
labels = label(mask, background=0, connectivity=2)
table = regionprops_table(labels, intensity_image=intensity, properties=(
    "label", "area", "centroid", "bbox", "equivalent_diameter_area", "eccentricity",
    "intensity_mean", "intensity_min", "intensity_max"))
t1 = time.perf_counter()
split = np.zeros(mask.shape, np.int32)
for c in (1, 2):
    inside = mask == c
    distance = ndi.distance_transform_edt(inside)
    markers = label(h_maxima(distance, 2), connectivity=2)
    split = np.maximum(split, watershed(-distance, markers, mask=inside) + (split.max() if c == 2 else 0) * inside)
t2 = time.perf_counter()
print(json.dumps({"objects": int(labels.max()), "components": t1 - t0,
                  "watershed": t2 - t1, "watershed_objects": int(len(np.unique(split)) - 1)}))
"""


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tessera", default=".build/release/tessera")
    p.add_argument("--size", type=int, default=8192)
    p.add_argument("--count", type=int, default=30000)
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        prefix = folder + "/scene-"
        cmd = [a.tessera, "bench", "--objects", str(a.size), "--object-count", str(a.count), "--repeats", "1",
               "--json"]
        subprocess.run(cmd + ["--save-mask", prefix], check=True, stdout=subprocess.DEVNULL)
        for r in range(a.rounds):
            t = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            s = json.loads(subprocess.run([sys.executable, "-c", SKIMAGE, prefix + "mask.npy",
                                           prefix + "intensity.npy"], check=True, capture_output=True,
                                          text=True).stdout)
            print(f"round {r + 1}: {a.size}x{a.size}, {t['objects']:.0f} objects (scikit-image {s['objects']})")
            print(f"  components + measurements: tessera {t['whole_seconds']:.3f} s whole, "
                  f"{t['blocks_seconds']:.3f} s in blocks; scikit-image {s['components']:.3f} s "
                  f"({s['components'] / t['whole_seconds']:.1f}x / {s['components'] / t['blocks_seconds']:.1f}x)")
            print(f"  watershed: tessera {t['watershed_seconds']:.3f} s ({t['watershed_objects']:.0f} objects); "
                  f"scikit-image {s['watershed']:.3f} s ({s['watershed_objects']} objects) "
                  f"({s['watershed'] / t['watershed_seconds']:.1f}x)")


if __name__ == "__main__":
    main()
