#!/usr/bin/python3
"""Random-weight torchvision reference for Incept's parity tests (version 1).

Usage: torchvision_reference.py MODEL OUT_DIR SEED SIZE
Builds torchvision's MODEL (googlenet or inception_v3) with aux heads, gives it random weights and
random BatchNorm statistics, and writes its state dict as OUT_DIR/weights.safetensors and (torch.save)
OUT_DIR/weights.pth, OUT_DIR/input.npy (float32 [2, 3, SIZE, SIZE]), and the evaluation logits computed
in float32 (OUT_DIR/logits32.npy) and in float64 (OUT_DIR/logits64.npy).
Needs Debian's python3-torch and python3-torchvision.
"""
import json
import struct
import sys

import numpy as np
import torch
import torchvision


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for key, t in tensors.items():
        a = t.detach().cpu().contiguous().numpy()
        dtype = {np.dtype("float32"): "F32", np.dtype("int64"): "I64"}[a.dtype]
        data = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[key] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    name, out, seed, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.manual_seed(seed)
    build = {"googlenet": torchvision.models.googlenet, "inception_v3": torchvision.models.inception_v3}[name]
    model = build(weights=None, aux_logits=True, transform_input=False, init_weights=True)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.8, 1.2)
                m.bias.uniform_(-0.1, 0.1)
                m.num_batches_tracked.fill_(7)
    model.eval()
    write_safetensors(f"{out}/weights.safetensors", model.state_dict())
    torch.save(model.state_dict(), f"{out}/weights.pth")
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        logits32 = model(x)
        logits64 = model.double()(x.double())
    np.save(f"{out}/input.npy", x.numpy())
    np.save(f"{out}/logits32.npy", logits32.numpy())
    np.save(f"{out}/logits64.npy", logits64.numpy())


if __name__ == "__main__":
    main()
