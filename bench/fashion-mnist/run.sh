#!/usr/bin/env bash
# Trains CPU-sized GoogLeNet, Inception-v3 and Inception-ResNet-v2 on Fashion-MNIST and prints one Markdown
# table row per run (test accuracy against wall-clock minutes) for docs/benchmarks.md.
# Usage: bench/fashion-mnist/run.sh [epochs] [models…]   (default: 10 epochs; googlenet inception_v3 inception_resnet_v2)
set -euo pipefail
cd "$(dirname "$0")/../.."
epochs=${1:-10}
shift || true
models=${*:-googlenet inception_v3 inception_resnet_v2}
dotnet build -c Release src/Incept.Cli -v q -nologo >/dev/null
incept=src/Incept.Cli/bin/Release/net10.0/incept.dll
machine="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "| date | model | width | epochs | test top-1 | test top-5 | minutes | machine | command |"
echo "|---|---|---|---|---|---|---|---|---|"
for model in $models; do
  out="runs/bench-$model-$epochs"
  rm -rf "$out"
  cmd="incept train --model $model --epochs $epochs --out $out --format json"
  line=$(dotnet "$incept" train --model "$model" --epochs "$epochs" --out "$out" --format json 2>/dev/null | tail -n 1)
  python3 - "$line" "$model" "$epochs" "$machine" "$cmd" <<'PY'
import json, sys, datetime
r = json.loads(sys.argv[1])
print(f"| {datetime.date.today()} | {sys.argv[2]} | 0.25 | {r['epochs']} | {r['test_top1']:.4f} | {r['test_top5']:.4f} | {r['seconds'] / 60:.1f} | {sys.argv[4]} | `{sys.argv[5]}` |")
PY
done
