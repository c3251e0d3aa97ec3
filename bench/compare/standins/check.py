#!/usr/bin/python3
"""Checks every stand-in against its reference fixture: keys, shapes and order of the state_dict, strict loading,
logits within the fixture tolerance, and that TorchScript can compile it as pytorch_bench.py's torchscript anchor does
(scripted, or traced where the forward pass looks modules up by name).

    bench/compare/standins/check.py [model ...]      (default: every stand-in)

Prints one line per model and exits with 1 if any check fails.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
import standins  # noqa: E402


def main():
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    names = sys.argv[1:] or list(standins.FIXTURE)
    failed = 0
    for name in names:
        if name not in standins.FIXTURE:
            print(f"{name}: no stand-in (have {', '.join(standins.FIXTURE)})")
            failed += 1
            continue
        try:
            model = standins.build(name)
            diff = fixture.check(model, standins.FIXTURE[name])
            try:
                torch.jit.script(model.eval())
                how = "scripts"
            except Exception:
                torch.jit.trace(model.eval(), fixture.input_batch(standins.FIXTURE[name]))
                how = "traces"
            params = sum(p.numel() for p in model.parameters())
            print(f"{name}: matches {standins.FIXTURE[name]} (max |difference| {diff:.2e}, {params:,} parameters, TorchScript {how})")
        except Exception as e:  # report every model, then fail
            print(f"{name}: FAILED: {e}")
            failed += 1
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
