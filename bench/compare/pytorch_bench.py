#!/usr/bin/python3
"""PyTorch anchors for bench/compare: torchvision googlenet and inception_v3 on the CPU, and stand-ins for the other families.

Prints one JSON object per line, with the same field names as `incept bench --format json`:
images_per_second, ms_per_batch_median/min/max, peak_rss_mb (this process's peak so far: the configurations
run one per process, see run.sh), rss_file_mb (the part of it in mapped files' pages, read at the end), plus model,
mode, engine, batch_size, threads.

Engines: eager (NCHW), channels_last, and for inference torchscript (torch.jit.freeze of a scripted model,
traced if scripting fails, then torch.jit.optimize_for_inference). Training is one step with the auxiliary
heads (loss = main + 0.3 * each aux, as torchvision trains GoogLeNet; 0.4 for Inception-v3's single head is
not used so that both models run the same recipe as Incept's bench), SGD with momentum 0.9 and weight decay 1e-4.
Weights are random (torchvision's init): the speed does not depend on them.

bn_inception, inception_v4, inception_resnet_v1 and inception_resnet_v2 have no reference code in Debian (Cadene's
pretrainedmodels, timm, facenet-pytorch); they run as the PyTorch stand-ins in standins/, which have the references'
state_dict keys and reproduce their fixture logits (standins/check.py). They have no auxiliary heads, so their
training step is the main loss alone.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "standins"))
import standins  # noqa: E402  (standins/standins.py: the registry of stand-in models)

INPUT_SIZE = {"googlenet": 224, "inception_v3": 299, **standins.INPUT_SIZE}
AUX = ("googlenet", "inception_v3")


def build(name, aux):
    if name == "googlenet":
        return torchvision.models.googlenet(weights=None, aux_logits=aux, init_weights=True)
    if name == "inception_v3":
        return torchvision.models.inception_v3(weights=None, aux_logits=aux, init_weights=True)
    if name in standins.INPUT_SIZE:
        return standins.build(name)
    raise SystemExit(f"unknown model {name}")


WARMUP_SECONDS = 0.0  # set by --warmup-seconds: the warm-up also lasts at least this long


def timed(step, warmup, iterations):
    """Runs at least `warmup` untimed steps (more to fill WARMUP_SECONDS), then times `iterations`."""
    warmups, start = 0, time.perf_counter()
    while warmups < warmup or time.perf_counter() - start < WARMUP_SECONDS:
        step()
        warmups += 1
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1000.0)
    return times, warmups


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_file_mb():
    """Resident pages of mapped files (the libraries) now, as Incept's `rss_file_mb`; None where the kernel has no RssFile."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("RssFile:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def infer(name, engine, batch, size, warmup, iterations):
    model = build(name, aux=False).eval()
    x = torch.randn(batch, 3, size, size)
    if engine in ("channels_last", "channels_last_bf16"):
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    bf16 = engine == "channels_last_bf16"
    if engine == "torchscript":
        with torch.no_grad():
            try:
                scripted = torch.jit.script(model)
            except Exception:  # torchvision models script; trace as a fallback
                scripted = torch.jit.trace(model, x)
            model = torch.jit.optimize_for_inference(torch.jit.freeze(scripted.eval()))

    def step():
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
            if isinstance(out, tuple):
                out = out[0]
            return out

    return timed(step, warmup, iterations)


def train(name, engine, batch, size, warmup, iterations):
    model = build(name, aux=name in AUX).train()
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 1000, (batch,))
    if engine in ("channels_last", "channels_last_bf16"):
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    bf16 = engine == "channels_last_bf16"
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
        if name == "googlenet":
            heads = [out.logits, out.aux_logits1, out.aux_logits2]
        elif name == "inception_v3":
            heads = [out.logits, out.aux_logits]
        else:
            heads = [out]
        heads = [h.float() for h in heads]
        loss = loss_fn(heads[0], y) + 0.3 * sum(loss_fn(h, y) for h in heads[1:])
        loss.backward()
        opt.step()

    return timed(step, warmup, iterations)


def export_onnx(name, size, path):
    """Exports the evaluation-mode model with a dynamic batch dimension (opset 13)."""
    model = build(name, aux=False).eval()
    x = torch.randn(1, 3, size, size)
    torch.onnx.export(model, x, path, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=13)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, choices=sorted(INPUT_SIZE))
    p.add_argument("--mode", default="infer", choices=["infer", "train"])
    p.add_argument("--engine", default="eager", choices=["eager", "channels_last", "channels_last_bf16", "torchscript"])
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--warmup-seconds", type=float, default=0.0)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--export-onnx", metavar="FILE", help="only export the model to FILE and exit")
    a = p.parse_args()
    global WARMUP_SECONDS
    WARMUP_SECONDS = a.warmup_seconds
    size = INPUT_SIZE[a.model]
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.export_onnx:
        export_onnx(a.model, size, a.export_onnx)
        return
    if a.mode == "train" and a.engine == "torchscript":
        raise SystemExit("torchscript is an inference engine here")
    run = infer if a.mode == "infer" else train
    times, warmups = run(a.model, a.engine, a.batch_size, size, a.warmup, a.iterations)
    median = statistics.median(times)
    print(json.dumps({
        "impl": "pytorch", "model": a.model, "mode": a.mode, "engine": a.engine, "batch_size": a.batch_size,
        "input_size": size, "threads": torch.get_num_threads(), "warmup": warmups, "iterations": a.iterations,
        "images_per_second": round(a.batch_size / (median / 1000.0), 3), "ms_per_batch_median": round(median, 3),
        "ms_per_batch_min": round(min(times), 3), "ms_per_batch_max": round(max(times), 3),
        "peak_rss_mb": round(peak_rss_mb(), 1), "rss_file_mb": None if (files := rss_file_mb()) is None else round(files, 1),
        "torch_version": torch.__version__,
    }))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
