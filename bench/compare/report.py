#!/usr/bin/python3
"""Turns bench/compare results (JSON lines) into a Markdown table of images/s and ratios."""
import argparse
import datetime
import json
import os
import re
import statistics
import subprocess


def cpu():
    text = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    model = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
    flags = set(flags.group(1).split()) if flags else set()
    mhz = re.search(r"^cpu MHz\s*:\s*(.*)$", text, re.M)
    return {
        "model": model.group(1) if model else "unknown",
        "cores": os.cpu_count(),
        "ghz": float(mhz.group(1)) / 1000 if mhz else 0.0,
        "avx512": "avx512f" in flags, "avx512_bf16": "avx512_bf16" in flags, "amx": "amx_tile" in flags,
        "avx2": "avx2" in flags,
    }


def versions(repo):
    def run(*cmd):
        try:
            return subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
        except Exception:
            return "?"
    props = open(os.path.join(repo, "Directory.Packages.props")).read()
    ts = re.search(r'Include="TorchSharp" Version="([^"]+)"', props)
    lt = re.search(r'Include="libtorch-cpu-linux-x64" Version="([^"]+)"', props)
    import torch
    import torchvision
    return {
        "incept": run("git", "rev-parse", "--short", "HEAD"),
        "torchsharp": ts.group(1) if ts else "?", "libtorch": lt.group(1) if lt else "?",
        "torch": torch.__version__, "torchvision": torchvision.__version__,
        "dotnet": run("dotnet", "--version"),
    }


def fmt(x, digits=1):
    return "–" if x is None else f"{x:.{digits}f}"


def merge_rounds(rows):
    """One row per configuration: the median images/s and peak RSS over its rounds, with every round's images/s kept
    (``by_round``) for the spread and for ratios taken within a round."""
    groups = {}
    for r in rows:
        key = (r.get("impl"), r.get("label"), r["model"], r["mode"], r["batch_size"])
        groups.setdefault(key, []).append(r)
    merged = []
    for group in groups.values():
        ips = [r["images_per_second"] for r in group]
        median = statistics.median(ips)
        # The round closest to the median supplies the per-run fields (GFLOP/s scale with images/s).
        typical = dict(min(group, key=lambda r: abs(r["images_per_second"] - median)))
        scale = median / typical["images_per_second"]
        for field in ("gflops", "peak_fraction", "gemm_fraction"):
            if typical.get(field) is not None:
                typical[field] *= scale
        typical["images_per_second"] = median
        for field in ("peak_rss_mb", "rss_file_mb"):
            values = [r[field] for r in group if r.get(field) is not None]
            typical[field] = statistics.median(values) if values else None
        typical["by_round"] = {r.get("round", 1): r["images_per_second"] for r in group}
        # The fastest single pass over all rounds, as images/s: what the configuration reaches when the machine is quiet.
        fastest = [r["ms_per_batch_min"] for r in group if r.get("ms_per_batch_min")]
        typical["best_pass_ips"] = 1000.0 * typical["batch_size"] / min(fastest) if fastest else None
        merged.append(typical)
    return merged


def cell(r, digits=2):
    """images/s of a merged row: the median, and the lowest and highest round when there were several."""
    if not r:
        return "–"
    values = list(r["by_round"].values())
    if len(values) < 2:
        return fmt(r["images_per_second"], digits)
    return f"{fmt(r['images_per_second'], digits)} ({min(values):.1f}–{max(values):.1f})"


def ratio_cell(ours, theirs):
    """Ratio of medians, and the range of the ratios measured within one round when there were several."""
    if not ours or not theirs:
        return "–"
    text = f"{ours['images_per_second'] / theirs['images_per_second']:.2f}×"
    paired = [ours["by_round"][k] / theirs["by_round"][k] for k in ours["by_round"] if k in theirs["by_round"]]
    if len(paired) >= 2:
        text += f" ({min(paired):.2f}–{max(paired):.2f})"
    return text


def rss_cell(ours, theirs):
    """Peak RSS of the two, medians over the rounds, with the part in mapped files' pages where both runs read it
    (those pages depend on the page cache as much as on the work: docs/benchmarks.md, twenty-seventh session)."""
    text = f"{fmt(ours and ours.get('peak_rss_mb'), 0)} / {fmt(theirs and theirs.get('peak_rss_mb'), 0)}"
    if ours and theirs and ours.get("rss_file_mb") is not None and theirs.get("rss_file_mb") is not None:
        text += f" (files {fmt(ours['rss_file_mb'], 0)} / {fmt(theirs['rss_file_mb'], 0)})"
    return text


def best_pass_table(rows, keys):
    """The same comparisons by each configuration's fastest pass (over all rounds and iterations) instead of its median:
    a virtual machine's slow spells lengthen the median of whichever process they fall on, while the fastest pass of
    each is what it does when the machine is quiet. Shown beside the medians, not in their place."""
    lines = ["", "Fastest pass of each configuration over all rounds, as images/s (the medians above are the figures of "
             "record; on a machine with slow spells the fastest passes compare the engines when it is quiet):", "",
             "| model | mode | batch | Incept fast | best PyTorch | ORT (torch.onnx) | ORT (Incept export) | native / best PyTorch | Incept / ORT |",
             "|---|---|---|---|---|---|---|---|---|"]
    any_row = False
    for model, mode, batch in keys:
        group = [r for r in rows if (r["model"], r["mode"], r["batch_size"]) == (model, mode, batch) and r.get("best_pass_ips")]
        best = lambda pred: max((r for r in group if pred(r)), key=lambda r: r["best_pass_ips"], default=None)
        native = best(lambda r: r.get("impl") == "incept" and r.get("label") in ("fast", "torch", "torch-channels-last"))
        fast = best(lambda r: r.get("impl") == "incept" and r.get("label") == "fast")
        torch_best = best(lambda r: r.get("impl") == "pytorch" and not r.get("label", "").endswith("bf16"))
        ort = best(lambda r: r.get("impl") == "incept" and r.get("label") == "onnx")
        own = best(lambda r: r.get("impl") == "incept" and r.get("label") == "onnx-incept-export")
        ours_any = max((r for r in (native, own) if r), key=lambda r: r["best_pass_ips"], default=None)
        if not native or not torch_best:
            continue
        any_row = True
        ips = lambda r: fmt(r and r["best_pass_ips"], 2)
        vs_torch = f"{native['best_pass_ips'] / torch_best['best_pass_ips']:.2f}×"
        vs_ort = f"{ours_any['best_pass_ips'] / ort['best_pass_ips']:.2f}×" if ort and ours_any else "–"
        lines.append(f"| {model} | {mode} | {batch} | {ips(fast)} | {ips(torch_best)} {torch_best.get('label')} | {ips(ort)} | {ips(own)} | {vs_torch} | {vs_ort} |")
    return lines if any_row else []


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--results", required=True)
    p.add_argument("--notes")
    p.add_argument("--load-before")
    p.add_argument("--load-after")
    p.add_argument("--command", default="bench/compare/run.sh")
    p.add_argument("--repo", default=".")
    p.add_argument("--standins", help="standins/check.py's output, when stand-ins ran")
    a = p.parse_args()
    raw = [json.loads(l) for l in open(a.results) if l.strip()]
    rounds = max((r.get("round", 1) for r in raw), default=1)
    rows = merge_rounds(raw)
    machine = cpu()
    v = versions(a.repo)
    out = []
    out.append(f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC: `{a.command}`")
    out.append("")
    out.append(f"- Machine: {machine['model']}, {machine['cores']} cores at {machine['ghz']:.2f} GHz; "
               f"avx2 {'yes' if machine['avx2'] else 'no'}, avx512f {'yes' if machine['avx512'] else 'no'}, "
               f"avx512_bf16 {'yes' if machine['avx512_bf16'] else 'no'}, amx {'yes' if machine['amx'] else 'no'} (as /proc/cpuinfo reports them).")
    out.append(f"- Versions: Incept {v['incept']} on TorchSharp {v['torchsharp']} / libtorch {v['libtorch']} (.NET SDK {v['dotnet']}); "
               f"PyTorch {v['torch']}, torchvision {v['torchvision']} (Debian).")
    for name, path in (("before", a.load_before), ("after", a.load_after)):
        if path and os.path.exists(path):
            out.append(f"- Load {name}: `{open(path).read().strip()}`")
    out.append("")
    if rounds > 1:
        out.append(f"Each configuration ran once in each of {rounds} rounds: images/s are the median over rounds, in parentheses "
                   "the slowest and fastest round; ratios are of the medians, in parentheses the lowest and highest ratio "
                   "measured within one round.")
        out.append("")
    out.append("images/s (higher is better). *PyTorch + tcmalloc* is the faster of PyTorch's channels-last and TorchScript runs with tcmalloc preloaded. *Native / best PyTorch* compares Incept's best TorchSharp engine with PyTorch's best column; "
               "*Incept / ORT* compares Incept's best engine, ONNX Runtime on Incept's own export included, with ONNX Runtime on "
               "the torch.onnx file.")
    out.append("")
    out.append("| model | mode | batch | Incept fast | Incept torch | Incept torch CL | PyTorch eager | PyTorch CL | PyTorch TorchScript | PyTorch + tcmalloc | ORT (torch.onnx) | ORT (Incept export) | native / best PyTorch | Incept / ORT | Incept GFLOP/s (% peak) | peak RSS MiB Incept / PyTorch (of it in library files) |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    keys = sorted({(r["model"], r["mode"], r["batch_size"]) for r in rows}, key=lambda k: (k[0], k[1], k[2]))
    best = {}  # (model, mode, batch) -> (Incept's best TorchSharp run, PyTorch's best run), for the targets' table
    for model, mode, batch in keys:
        group = [r for r in rows if (r["model"], r["mode"], r["batch_size"]) == (model, mode, batch)]

        def get(impl, label):
            for r in group:
                if r.get("impl") == impl and r.get("label") == label:
                    return r
            return None

        inc = {l: get("incept", l) for l in ("fast", "torch", "torch-channels-last")}
        pt = {l: get("pytorch", l) for l in ("eager", "channels_last", "torchscript", "channels_last_tcmalloc", "torchscript_tcmalloc")}
        ort = get("incept", "onnx")
        own = get("incept", "onnx-incept-export")
        ips = lambda r: r["images_per_second"] if r else None
        best_inc = max((r for r in inc.values() if r), key=ips, default=None)
        best_any = max((r for r in [*inc.values(), own] if r), key=ips, default=None)
        best_pt = max((r for r in pt.values() if r), key=ips, default=None)
        best[(model, mode, batch)] = (best_inc, best_pt)
        # PyTorch with tcmalloc preloaded: the faster of its channels-last and TorchScript runs.
        pt_tc = max((r for r in (pt["channels_last_tcmalloc"], pt["torchscript_tcmalloc"]) if r), key=ips, default=None)
        gf = f"{best_inc['gflops']:.1f} ({100 * best_inc['peak_fraction']:.1f}%" if best_inc else "–"
        if best_inc:
            gf += f"; {100 * best_inc['gemm_fraction']:.0f}% of product)" if best_inc.get("gemm_fraction") else ")"
        rss = rss_cell(best_inc, best_pt)
        out.append(f"| {model} | {mode} | {batch} | {cell(inc['fast'])} | {cell(inc['torch'])} | {cell(inc['torch-channels-last'])} | "
                   f"{cell(pt['eager'])} | {cell(pt['channels_last'])} | {cell(pt['torchscript'])} | {cell(pt_tc)} | {cell(ort)} | {cell(own)} | "
                   f"{ratio_cell(best_inc, best_pt)} | {ratio_cell(best_any, ort)} | {gf} | {rss} |")
    out.extend(best_pass_table(rows, keys))
    bf16_keys = [k for k in keys if any(r.get("label") in ("fast-bf16", "torch-channels-last-bf16", "channels_last_bf16")
                                         for r in rows if (r["model"], r["mode"], r["batch_size"]) == k)]
    if bf16_keys:
        out.append("")
        out.append("bfloat16 (the optional path; not part of the float32 targets above), images/s: Incept's fast engine in "
                   "bfloat16 for inference and mixed precision with float32 master weights for training (channels-last), "
                   "PyTorch channels-last under `torch.autocast(\"cpu\", dtype=torch.bfloat16)`.")
        out.append("")
        out.append("| model | mode | batch | Incept bf16 | Incept float32 (same engine) | speed-up | PyTorch bf16 | Incept bf16 / PyTorch bf16 | peak RSS MiB Incept / PyTorch (of it in library files) |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for model, mode, batch in bf16_keys:
            group = {(r.get("impl"), r.get("label")): r for r in rows if (r["model"], r["mode"], r["batch_size"]) == (model, mode, batch)}
            ours = group.get(("incept", "fast-bf16" if mode == "infer" else "torch-channels-last-bf16"))
            base = group.get(("incept", "fast" if mode == "infer" else "torch-channels-last"))
            theirs = group.get(("pytorch", "channels_last_bf16"))
            rss = rss_cell(ours, theirs)
            out.append(f"| {model} | {mode} | {batch} | {cell(ours)} | {cell(base)} | {ratio_cell(ours, base)} | {cell(theirs)} | {ratio_cell(ours, theirs)} | {rss} |")
    if gemm := [r["gemm_gflops"] for r in raw if r.get("impl") == "incept" and r.get("gemm_gflops")]:
        product = statistics.median(gemm)
        out.append("")
        out.append(f"Measured float32 matrix product (2048×2048, libtorch's `mm` on the same threads, in every Incept process, "
                   f"median of {len(gemm)}): {product:.0f} GFLOP/s, from {min(gemm):.0f} to {max(gemm):.0f}. libtorch's "
                   "convolutions without oneDNN are im2col and this product, so it bounds them. What the targets ask for, in "
                   "GFLOP/s (2 FLOPs per multiply-accumulate of Incept's count, ×3 for a training step) and as a share of it:")
        out.append("")
        out.append("| model | mode | batch | PyTorch best | its GFLOP/s (share of product) | target | the target's GFLOP/s (share of product) | Incept native GFLOP/s (share) |")
        out.append("|---|---|---|---|---|---|---|---|")
        for model, mode, batch in keys:
            best_ours, best_theirs = best[(model, mode, batch)]
            if not best_ours or not best_theirs or not best_ours.get("macs_per_image"):
                continue
            flops = 2.0 * best_ours["macs_per_image"] * (3 if mode == "train" else 1) / 1e9
            factor = 1.2 if mode == "train" else 1.3
            g_pt = best_theirs["images_per_second"] * flops
            g_ours = best_ours["images_per_second"] * flops
            out.append(f"| {model} | {mode} | {batch} | {best_theirs['images_per_second']:.2f} {best_theirs.get('label')} | "
                       f"{g_pt:.0f} ({100 * g_pt / product:.0f}%) | {factor}× | {factor * g_pt:.0f} ({100 * factor * g_pt / product:.0f}%) | "
                       f"{g_ours:.0f} ({100 * g_ours / product:.0f}%) |")
    if incept_rows := [r for r in rows if r.get("impl") == "incept" and r.get("peak_gflops")]:
        r = incept_rows[0]
        out.append("")
        out.append(f"FMA peak used for the share: {r['peak_gflops']:.0f} GFLOP/s = cores × GHz × 2 FMA units × "
                   f"{16 if r.get('avx512') else 8} float32 lanes × 2 (vector ISA {r.get('vector_isa')}).")
    native = [r for r in raw if r.get("impl") == "incept" and not r.get("label", "").startswith("onnx")]
    if off := [r for r in native if r.get("onednn") is False]:
        checks = sorted({r.get("convolution_check", "not reported") for r in off})
        out.append("")
        out.append(f"Incept's TorchSharp engines ran without oneDNN in {len(off)} of {len(native)} runs (convolution check: "
                   f"{', '.join(checks)}): where libtorch's oneDNN convolutions fail Incept's start-up check, they run in "
                   "libtorch's own kernels, im2col and MKL matrix products (docs/quirks.md). ONNX Runtime is not affected.")
    if switched := [r for r in native if r.get("mkl_avx512") == "switched on"]:
        out.append("")
        out.append(f"In {len(switched)} of {len(native)} of Incept's TorchSharp runs MKL ran its AVX-512 code path, which it "
                   "does not choose itself on this CPU (Incept's start-up switch, checked; INCEPT_MKL_AVX512). PyTorch's MKL "
                   "kept its own choice.")
    if a.standins and os.path.exists(a.standins) and (checked := [l.strip() for l in open(a.standins) if l.strip()]):
        out.append("")
        out.append("PyTorch and torch.onnx ran these models as the stand-ins of bench/compare/standins (their references are "
                   "not in Debian), each checked against its reference fixture before the run:")
        out.extend(f"- {l}" for l in checked)
    if a.notes and os.path.exists(a.notes):
        notes = [l.strip() for l in open(a.notes) if l.strip()]
        if notes:
            out.append("")
            out.append("Skipped or failed:")
            out.extend(f"- {n}" for n in notes)
    print("\n".join(out))


if __name__ == "__main__":
    main()
