#!/usr/bin/env bash
# Trains CPU-sized GoogLeNet, Inception-v3 and Inception-ResNet-v2 on Fashion-MNIST and prints one Markdown table
# row per run for docs/benchmarks.md: test accuracy against wall-clock minutes (training and evaluation, build
# excluded), including the minutes until the test accuracy first reached 0.937 (the GoogLeNet row of the
# dataset's own benchmark table) and 0.95.
# Usage: bench/fashion-mnist/run.sh [model[:epochs[:width]]]…
#   default: googlenet:8 inception_v3:5 inception_resnet_v2:2 (each about 20 minutes on 2 idle cores), width 0.25
# Extra `incept train` options can be passed in the INCEPT_TRAIN_ARGS environment variable. INCEPT_DLL names an
# already built incept.dll (for example a copy outside the tree, so that builds during a long run cannot replace it).
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${*:-googlenet:8 inception_v3:5 inception_resnet_v2:2}
incept=${INCEPT_DLL:-}
if [[ -z "$incept" ]]; then
  dotnet build -c Release src/Incept.Cli -v q -nologo >/dev/null
  incept=src/Incept.Cli/bin/Release/net10.0/incept.dll
fi
machine="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "| date | model | width | epochs | best test top-1 | top-5 | minutes | minutes to 0.937 | minutes to 0.95 | machine | command |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for run in $runs; do
  IFS=: read -r model epochs width <<<"$run"
  epochs=${epochs:-10}
  width=${width:-0.25}
  out="runs/bench-$model-$epochs-$width"
  rm -rf "$out"
  mkdir -p "$(dirname "$out")"
  args=(train --model "$model" --epochs "$epochs" --width "$width" --out "$out" --format json ${INCEPT_TRAIN_ARGS:-})
  line=$(dotnet "$incept" "${args[@]}" 2>"$out.log" | tail -n 1)
  /usr/bin/python3 - "$line" "$out/metrics.jsonl" "$model" "$width" "$machine" "incept ${args[*]}" <<'PY'
import json, sys, datetime
result = json.loads(sys.argv[1])
history = [json.loads(l) for l in open(sys.argv[2])]
def tested(h):
    return isinstance(h["test_top1"], (int, float)) and h["test_top1"] == h["test_top1"]
def minutes_to(target):
    if not any(tested(h) for h in history):
        # --final-test-only: the test split was evaluated once, at the end.
        return f"{result['seconds'] / 60:.1f}" if result["test_top1"] >= target else "not reached"
    elapsed = 0.0
    for h in history:
        elapsed += h["seconds"]
        if tested(h) and h["test_top1"] >= target:
            return f"{elapsed / 60:.1f}"
    return "not reached"
print(f"| {datetime.date.today()} | {sys.argv[3]} | {sys.argv[4]} | {result['epochs']} | {result['test_top1']:.4f} | "
      f"{result['test_top5']:.4f} | {result['seconds'] / 60:.1f} | {minutes_to(0.937)} | {minutes_to(0.95)} | {sys.argv[5]} | `{sys.argv[6]}` |")
PY
done
