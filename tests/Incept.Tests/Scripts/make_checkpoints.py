#!/usr/bin/python3
"""Checkpoints written by torch.save for Incept's PyTorch checkpoint reader tests (version 1).

Usage: make_checkpoints.py OUT_DIR            the small checkpoints below
       make_checkpoints.py OUT_DIR googlenet  OUT_DIR/googlenet.pth only

Writes into OUT_DIR:
  plain.pth             an OrderedDict state dict (with _metadata) holding float32, float64, float16,
                        bfloat16, int64, int32, int16, int8, uint8 and bool tensors, a transposed
                        (non-contiguous) tensor, a 0-d scalar, an empty tensor, an expanded (stride 0)
                        tensor, two views sharing one storage (one at an offset, one with steps), one tensor
                        stored under two names, a Parameter, and bn.num_batches_tracked
  expected.safetensors  the same tensors, each contiguous, for comparison
  wrapped.pth           {"state_dict": <plain>, "epoch": 3, "arch": "toy", "best_acc1": 0.75,
                         "optimizer": <an SGD-style state dict with a tensor>}
  dataparallel.pth      <plain> with every key prefixed by "module."
  legacy.pth            <plain> in the pre-1.6 format (_use_new_zipfile_serialization=False)
  malicious_global.pth  a torch-style zip whose data.pkl calls os.system (protocol 2 GLOBAL + REDUCE)
  malicious_stack.pth   a torch-style zip whose data.pkl calls builtins.exec (protocol 4 STACK_GLOBAL)
  scripted.pt           a TorchScript archive (torch.jit.save of a Linear), which is not a state dict
  googlenet.pth         torchvision googlenet(weights=None, aux_logits=True, init_weights=True).state_dict()
Both malicious payloads would create OUT_DIR/PWNED if a loader ran them; this script never loads them.
Needs Debian's python3-torch (and python3-torchvision for googlenet).
"""
import argparse
import collections
import json
import os
import pickle
import struct
import sys
import zipfile

import torch

SAFETENSORS_DTYPES = {
    torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for key, t in tensors.items():
        t = t.detach().contiguous()
        # numpy has no bfloat16: its bytes are those of an int16 tensor of the same shape.
        data = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        header[key] = {"dtype": SAFETENSORS_DTYPES[t.dtype], "shape": list(t.shape),
                       "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def plain_state_dict():
    g = torch.Generator().manual_seed(3)
    base = torch.randn(4, 6, generator=g)
    tied = torch.randn(3, generator=g)
    sd = collections.OrderedDict()
    sd["conv.weight"] = torch.randn(4, 3, 3, 3, generator=g)
    sd["fc.weight_t"] = torch.randn(5, 3, generator=g).t()
    sd["f64"] = torch.randn(6, generator=g, dtype=torch.float64)
    sd["f16"] = torch.randn(2, 3, generator=g).half()
    sd["bf16"] = torch.randn(3, generator=g).bfloat16()
    sd["i64"] = torch.randint(-2**40, 2**40, (4,), generator=g)
    sd["i32"] = torch.randint(-2**30, 2**30, (2, 2), generator=g, dtype=torch.int32)
    sd["i16"] = torch.randint(-2**14, 2**14, (3,), generator=g, dtype=torch.int16)
    sd["i8"] = torch.randint(-128, 128, (3,), generator=g, dtype=torch.int8)
    sd["u8"] = torch.randint(0, 256, (2, 3), generator=g, dtype=torch.uint8)
    sd["mask"] = torch.rand(7, generator=g) > 0.5
    sd["scalar"] = torch.tensor(2.5)
    sd["empty"] = torch.zeros(0, 3)
    sd["expanded"] = torch.randn(3, generator=g).expand(2, 3)
    sd["base"] = base
    sd["view_offset"] = base[1:3, 2:5]
    sd["view_step"] = base[::2, 1::3]
    sd["tied_a"] = tied
    sd["tied_b"] = tied
    sd["param"] = torch.nn.Parameter(torch.randn(2, 2, generator=g))
    sd["bn.num_batches_tracked"] = torch.tensor(7)
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("bn", {"version": 2})])
    return sd


def write_malicious(path, data_pkl):
    prefix = os.path.splitext(os.path.basename(path))[0]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(prefix + "/data.pkl", data_pkl)
        z.writestr(prefix + "/version", "3\n")


def global_payload(marker):
    # Written opcode by opcode: {'state_dict': os.system('touch MARKER')}
    command = ("touch '%s'" % marker).encode()
    return (b"\x80\x02}q\x00"                                     # PROTO 2, EMPTY_DICT, BINPUT
            + b"X" + struct.pack("<I", 10) + b"state_dict"     # BINUNICODE key
            + b"cos\nsystem\n"                                 # GLOBAL os.system
            + b"X" + struct.pack("<I", len(command)) + command
            + b"\x85R"                                         # TUPLE1, REDUCE
            + b"s.")                                           # SETITEM, STOP


class ExecPayload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, ("open(%r, 'w').close()" % self.marker,)


def main():
    out = sys.argv[1]
    if sys.argv[2:] == ["googlenet"]:
        import torchvision
        torch.manual_seed(0)
        model = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True)
        torch.save(model.state_dict(), os.path.join(out, "googlenet.pth"))
        return

    sd = plain_state_dict()
    torch.save(sd, os.path.join(out, "plain.pth"))
    write_safetensors(os.path.join(out, "expected.safetensors"), sd)
    momentum = torch.ones(4, 3, 3, 3)
    # timm's and torchvision's training scripts save their parsed arguments beside the weights.
    args = argparse.Namespace(lr=0.1, model="toy", epochs=3)
    torch.save({"state_dict": sd, "epoch": 3, "arch": "toy", "best_acc1": 0.75, "args": args,
                "optimizer": {"state": {0: {"momentum_buffer": momentum}},
                              "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": [0]}]}},
               os.path.join(out, "wrapped.pth"))
    prefixed = collections.OrderedDict(("module." + k, v) for k, v in sd.items())
    torch.save(prefixed, os.path.join(out, "dataparallel.pth"))
    torch.save(sd, os.path.join(out, "legacy.pth"), _use_new_zipfile_serialization=False)
    torch.jit.script(torch.nn.Linear(2, 2)).save(os.path.join(out, "scripted.pt"))
    marker = os.path.join(out, "PWNED")
    write_malicious(os.path.join(out, "malicious_global.pth"), global_payload(marker))
    write_malicious(os.path.join(out, "malicious_stack.pth"), pickle.dumps({"state_dict": ExecPayload(marker)}, protocol=4))


if __name__ == "__main__":
    main()
