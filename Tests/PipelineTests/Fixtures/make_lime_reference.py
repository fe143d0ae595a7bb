#!/usr/bin/env python3
"""Reference surrogate fits from the real lime package, for LIMETests.

Run in a throw-away virtualenv (lime is never a test or build dependency of Tessera):

    python3 -m venv /tmp/limevenv && /tmp/limevenv/bin/pip install lime safetensors numpy torch
    /tmp/limevenv/bin/python Tests/PipelineTests/Fixtures/make_lime_reference.py \
        --out Tests/PipelineTests/Fixtures/lime-reference.safetensors

For each case: a 0/1 perturbation matrix (row 0 all ones, as lime_image makes it; one row all zeros), scores that
depend on some features non-linearly plus noise, the distances lime_image computes (sklearn's cosine
pairwise_distances to row 0), and LimeBase(kernel sqrt(exp(-d^2 / 0.25^2))).explain_instance_with_data with every
feature (lime_image's num_features=100000 default), whose coefficients, intercept, score (weighted R^2) and local
prediction are stored. Scores are rounded to float32 first so both sides fit the same numbers.
"""
import argparse
import importlib.metadata

import numpy as np
import sklearn.metrics
import torch
from lime import lime_base
from safetensors.torch import save_file


def kernel(d, kernel_width=0.25):
    return np.sqrt(np.exp(-(d ** 2) / kernel_width ** 2))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    rng = np.random.RandomState(0)
    tensors = {}
    for name, (samples, features) in {"small": (200, 12), "lime": (1000, 60)}.items():
        data = rng.randint(0, 2, samples * features).reshape((samples, features))
        data[0, :] = 1
        data[7, :] = 0
        beta = rng.normal(size=features) * (rng.uniform(size=features) < 0.3)
        scores = data @ beta + 0.5 * data[:, 0] * data[:, 1] + 0.1 * rng.normal(size=samples)
        scores = scores.astype(np.float32).astype(np.float64)
        distances = sklearn.metrics.pairwise_distances(data, data[0].reshape(1, -1), metric="cosine").ravel()
        base = lime_base.LimeBase(kernel, verbose=False, random_state=0)
        intercept, exp, score, local = base.explain_instance_with_data(
            data, scores.reshape(-1, 1), distances, 0, features, feature_selection="auto")
        coefficients = np.zeros(features)
        for feature, weight in exp:
            coefficients[feature] = weight
        assert len(exp) == features
        tensors[f"{name}.kept"] = torch.tensor(data, dtype=torch.float32)
        tensors[f"{name}.scores"] = torch.tensor(scores, dtype=torch.float32)
        tensors[f"{name}.weights"] = torch.tensor(coefficients, dtype=torch.float32)
        tensors[f"{name}.fit"] = torch.tensor([intercept, score, float(local[0])], dtype=torch.float32)
        print(name, "intercept", intercept, "R2", score, "local", local)
    save_file(tensors, args.out, metadata={"lime": importlib.metadata.version("lime")})


if __name__ == "__main__":
    main()
