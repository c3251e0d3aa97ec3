"""Loads a formula-weight reference fixture (tests/Incept.Tests/Fixtures/reference, see its README) into a PyTorch
module and compares the module's logits with the reference's.

The formula is re-implemented here from the fixture README (FNV-1a-32 of the key, a Weyl sequence over the element
index, one rounding to float32 at the end); BatchNorm running statistics come from the fixture's safetensors file.
"""
import hashlib
import itertools
import json
import math
import os
import struct

import numpy as np
import torch

FIXTURES = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                         "tests", "Incept.Tests", "Fixtures", "reference"))


def fnv1a32(key):
    h = 2166136261
    for b in key.encode("utf-8"):
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def formula(key, shape, rule):
    """The fixture formula for one tensor, float32, shape `shape`."""
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    i = np.arange(n, dtype=np.uint64)
    x = (np.uint64(fnv1a32(key)) + i * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)
    u = x.astype(np.float64) / 4294967296.0
    if rule == "he_uniform":
        v = (u - 0.5) * 2 * math.sqrt(6.0 / (n // shape[0]))
    elif rule in ("bias", "bn_bias"):
        v = (u - 0.5) * 0.2
    elif rule == "bn_weight":
        v = 1 + (u - 0.5) * 0.4
    elif rule == "input":
        v = (u - 0.5) * 4
    else:
        raise ValueError(f"no formula for rule {rule}")
    return v.astype(np.float32).reshape(shape)


def read_keys(folder):
    """keys.tsv as a list of (key, shape tuple, dtype, rule)."""
    rows = []
    with open(os.path.join(FIXTURES, folder, "keys.tsv"), encoding="utf-8") as f:
        next(f)
        for line in f:
            key, shape, dtype, rule = line.rstrip("\n").split("\t")
            dims = () if shape == "scalar" else tuple(int(d) for d in shape.split("x"))
            rows.append((key, dims, dtype, rule))
    return rows


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        assert entry["dtype"] == "F32", entry
        begin, end = entry["data_offsets"]
        out[key] = np.frombuffer(data[begin:end], dtype="<f4").reshape(entry["shape"])
    return out


def read_npy(path):
    return np.load(path)


def state_dict(folder):
    """The fixture's full state_dict (formula weights and shipped BatchNorm statistics), in reference order."""
    stats = read_safetensors(os.path.join(FIXTURES, folder, "bn_stats.safetensors"))
    sd = {}
    for key, shape, dtype, rule in read_keys(folder):
        if rule == "zero":
            sd[key] = torch.tensor(0, dtype=torch.int64)
        elif rule in ("bn_running_mean", "bn_running_var"):
            sd[key] = torch.from_numpy(stats[key].copy())
        else:
            sd[key] = torch.from_numpy(formula(key, shape, rule))
    return sd


def check_digests(folder, sd):
    """Raises unless every formula tensor of `sd` has the SHA-256 that formula_sha256.tsv publishes (a wrong port of
    the formula would show here, not as a model mismatch)."""
    with open(os.path.join(FIXTURES, folder, "formula_sha256.tsv"), encoding="utf-8") as f:
        next(f)
        for line in f:
            key, _, _, digest = line.rstrip("\n").split("\t")
            if hashlib.sha256(sd[key].numpy().tobytes()).hexdigest() != digest:
                raise AssertionError(f"{folder}: the formula tensor {key} differs from the published digest")


def input_batch(folder):
    size = json.load(open(os.path.join(FIXTURES, folder, "meta.json"), encoding="utf-8"))["input_size"]
    return torch.from_numpy(formula("input", (2, 3, size, size), "input"))


# Tolerances other than 1e-4 x max(1, max|ref|), as in tests/Incept.Tests/Reference/ReferenceModels.cs: these two
# formula-weight networks amplify float32 round-off, and Debian's own torchvision inception_v3 differs from the
# shipped logits by 3.6e-3.
TOLERANCE = {"cadene_bninception": 1e-3, "torchvision_inception_v3": 5e-3}

# Fixtures whose logits float32 cannot reproduce on another build, not even with another thread count (see
# Float32Unstable in ReferenceModels.cs): for these, every BatchNorm input's channel means on the calibration batch
# are compared with the shipped running means, up to the module where round-off has grown too large.
FLOAT32_UNSTABLE = {"timm_inception_v4": "features.13."}


def check_batchnorm_inputs(model, folder, unstable_from):
    """The per-channel mean of every BatchNorm's input on the fixture's calibration batch (BatchNorms in training
    mode, as when the fixture was made) equals the shipped running mean, for every BatchNorm before `unstable_from`.
    Returns the largest difference."""
    stats = read_safetensors(os.path.join(FIXTURES, folder, "bn_stats.safetensors"))
    means, hooks = [], []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.train()
            hooks.append(module.register_forward_pre_hook(
                lambda m, args, name=name: means.append((name, args[0].mean(dim=(0, 2, 3))))))
    size = input_batch(folder).shape[-1]
    with torch.no_grad():
        model(torch.from_numpy(formula("calibration", (8, 3, size, size), "input")))
    for h in hooks:
        h.remove()
    model.eval()
    stable = list(itertools.takewhile(lambda nm: not nm[0].startswith(unstable_from), means))
    if not stable or len(stable) == len(means):
        raise AssertionError(f"{folder}: no BatchNorm before {unstable_from}, or none after it")
    worst = 0.0
    for name, mean in stable:
        ref = torch.from_numpy(stats[name + ".running_mean"].copy())
        diff = (mean - ref).abs().max().item()
        tol = 1e-4 * max(1.0, ref.abs().max().item())
        if not diff <= tol:
            raise AssertionError(f"{folder}: the input mean of {name} differs from the reference's by {diff:.3g} (tolerance {tol:.3g})")
        worst = max(worst, diff)
    return worst


def check(model, folder):
    """Raises AssertionError unless `model` has the fixture's keys, shapes and order, loads it strictly and gives
    its logits within the fixture's tolerance (1e-4 of the largest reference logit unless TOLERANCE says
    otherwise; for FLOAT32_UNSTABLE fixtures, the BatchNorm inputs instead). Returns the largest difference."""
    expected = [(k, s) for k, s, _, _ in read_keys(folder)]
    actual = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    if actual != expected:
        missing = [k for k, _ in expected if k not in dict(actual)]
        extra = [k for k, _ in actual if k not in dict(expected)]
        shapes = [(k, s, dict(actual)[k]) for k, s in expected if k in dict(actual) and dict(actual)[k] != s]
        raise AssertionError(f"{folder}: state_dict differs: missing {missing[:5]}, unexpected {extra[:5]}, "
                             f"shapes {shapes[:5]}, same keys in another order: {not missing and not extra and not shapes}")
    sd = state_dict(folder)
    check_digests(folder, sd)
    model.load_state_dict(sd, strict=True)
    if folder in FLOAT32_UNSTABLE:
        return check_batchnorm_inputs(model, folder, FLOAT32_UNSTABLE[folder])
    model.eval()
    with torch.no_grad():
        logits = model(input_batch(folder))
    ref = torch.from_numpy(read_npy(os.path.join(FIXTURES, folder, "logits.npy")))
    diff = (logits - ref).abs().max().item()
    tol = TOLERANCE.get(folder, 1e-4) * max(1.0, ref.abs().max().item())
    if not diff <= tol:
        raise AssertionError(f"{folder}: logits differ from the reference's by {diff:.3g} (tolerance {tol:.3g})")
    return diff
