#!/usr/bin/python3
"""Rewrites a safetensors state dict as a PyTorch checkpoint (version 1), for Incept's loader tests.

Usage: safetensors_to_pth.py IN.safetensors OUT.pth [plain|nested|module]
plain: torch.save(state_dict); nested: {"state_dict": ..., "epoch": 7}; module: keys prefixed "module.".
"""
import collections
import json
import struct
import sys

import numpy as np
import torch

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = collections.OrderedDict()
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        array = np.frombuffer(data[8 + n + begin:8 + n + end], dtype=DTYPES[entry["dtype"]]).reshape(entry["shape"])
        out[key] = torch.from_numpy(array.copy())
    return out


def main():
    source, target = sys.argv[1], sys.argv[2]
    style = sys.argv[3] if len(sys.argv) > 3 else "plain"
    state = read_safetensors(source)
    if style == "module":
        state = collections.OrderedDict(("module." + k, v) for k, v in state.items())
    obj = {"state_dict": state, "epoch": 7} if style == "nested" else state
    torch.save(obj, target)


if __name__ == "__main__":
    main()
