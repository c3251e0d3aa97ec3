#!/usr/bin/env bash
# Runs Incept (`incept bench`) and the PyTorch anchors (Debian's python3-torch) side by side on this machine,
# one configuration per process, and writes a Markdown table of ratios.
#
#   bench/compare/run.sh [--iterations N] [--warmup N] [--warmup-seconds S] [--threads N] [--models "googlenet inception_v3"]
#                        [--batches "1 16"] [--modes "infer train"] [--rounds N] [--bf16 auto|on|off] [--out DIR]
#
# --models also takes bn_inception, inception_v4, inception_resnet_v1 and inception_resnet_v2 (or "all"): their
# references are not in Debian, so PyTorch and torch.onnx run the stand-ins in standins/, which have the references'
# state_dict keys and reproduce their fixture logits (standins/check.py, run before they are timed). They have no aux
# heads, so their training step is the main loss alone on both sides.
#
# Incept's processes run with the C allocator the CLI picks (tcmalloc where libtcmalloc-minimal4 is installed); the
# PyTorch anchors run both as Python starts them and with the same tcmalloc preloaded (the *_tcmalloc labels), and
# the report takes the faster as PyTorch's best.
#
# --bf16 auto (the default) runs the bfloat16 configurations only where the CPU multiplies bfloat16 natively
# (avx512_bf16 or amx_bf16 in /proc/cpuinfo); elsewhere libtorch emulates it and they only cost time.
# Every configuration runs once per round, and the rounds run one after the other, so that a slow spell of the
# machine (a virtual machine's neighbours, say) lands in one round of a few configurations rather than in every
# measurement of one; the report gives the median over rounds (the figures of record), and beside them a table of the
# same comparisons by each configuration's fastest pass. Batch-1 inference times 4 × N iterations, since
# one of them takes only milliseconds. Every process, Incept's and PyTorch's, also warms up for at least
# --warmup-seconds (default 2) before timing, so that its first second (the .NET runtime compiling, allocators
# growing) is not what a short batch-1 configuration measures.
#
# Results: DIR/results.jsonl (one JSON line per configuration) and DIR/report.md (default DIR:
# bench/compare/results/<UTC date-time>). ONNX Runtime runs through `incept bench --engine onnx` on files
# exported with torch.onnx.export; where this build has no ONNX engine the rows say so.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
iterations=10
warmup=3
warmup_seconds=2
threads="$(nproc)"
models="googlenet inception_v3"
batches="1 16"
modes="infer train"
train_batch=16
rounds=3
bf16=auto
out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --iterations) iterations="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --warmup-seconds) warmup_seconds="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --batches) batches="$2"; shift 2 ;;
    --modes) modes="$2"; shift 2 ;;
    --train-batch) train_batch="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --bf16) bf16="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$models" == all ]] && models="googlenet inception_v3 bn_inception inception_v4 inception_resnet_v1 inception_resnet_v2"
case "$bf16" in
  auto) if grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo 2>/dev/null; then bf16=on; else bf16=off; fi ;;
  on|off) ;;
  *) echo "--bf16 takes auto, on or off" >&2; exit 2 ;;
esac
out="${out:-$here/results/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
results="$out/results.jsonl"
notes="$out/notes.txt"
: > "$results"
: > "$notes"
python=/usr/bin/python3
tcmalloc=""
for f in /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 /usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4 /usr/lib64/libtcmalloc_minimal.so.4; do
  [[ -f "$f" ]] && { tcmalloc="$f"; break; }
done
[[ -n "$tcmalloc" ]] || echo "no tcmalloc (apt-get install libtcmalloc-minimal4): the PyTorch tcmalloc anchors are left out" | tee -a "$notes" >&2
if ! "$python" -c 'import torch, torchvision' 2>/dev/null; then
  echo "Debian's python3-torch and python3-torchvision are needed: apt-get install python3-torch python3-torchvision" >&2
  exit 1
fi

echo "building incept (Release)…" >&2
dotnet build "$root/src/Incept.Cli" -c Release -v quiet -nologo >&2
incept=(dotnet "$root/src/Incept.Cli/bin/Release/net10.0/incept.dll")

uptime > "$out/load-before.txt"
round=1
common=() # set per configuration by `iterations_for`

iterations_for() { # batch, mode: the shared options of one configuration
  local n="$iterations"
  [[ "$1" == 1 && "$2" == infer ]] && n=$((iterations * 4))
  common=(--threads "$threads" --warmup "$warmup" --warmup-seconds "$warmup_seconds" --iterations "$n")
}

run_incept() { # label, then bench arguments
  local label="$1"; shift
  echo "incept $label $*" >&2
  local line
  # --measure-peak: the same process also times a large float32 matrix product, the ceiling of libtorch's convolutions.
  if line="$("${incept[@]}" bench "$@" "${common[@]}" --measure-peak --format json 2>"$out/last-error.txt")"; then
    "$python" -c 'import json,sys; d=json.loads(sys.argv[1]); d["impl"]="incept"; d["label"]=sys.argv[2]; d["round"]=int(sys.argv[3]); print(json.dumps(d))' "$line" "$label" "$round" >> "$results"
  else
    echo "round $round: incept $label $*: $(cat "$out/last-error.txt")" | tee -a "$notes" >&2
  fi
}

run_torch() { # label, then pytorch_bench.py arguments
  local label="$1"; shift
  echo "pytorch $label $*" >&2
  local line
  if line="$("$python" "$here/pytorch_bench.py" "$@" "${common[@]}" 2>"$out/last-error.txt")"; then
    "$python" -c 'import json,sys; d=json.loads(sys.argv[1]); d["label"]=sys.argv[2]; d["round"]=int(sys.argv[3]); print(json.dumps(d))' "$line" "$label" "$round" >> "$results"
  else
    echo "round $round: pytorch $label $*: $(tail -1 "$out/last-error.txt")" | tee -a "$notes" >&2
  fi
}

standins=""
for model in $models; do
  case "$model" in googlenet|inception_v3) ;; *) standins="$standins $model" ;; esac
done
if [[ -n "$standins" ]]; then
  # shellcheck disable=SC2086 # one argument per model
  "$python" "$here/standins/check.py" $standins | tee "$out/standins.txt" >&2 || { echo "a stand-in does not match its reference (see above)" >&2; exit 1; }
fi
for model in $models; do
  "$python" "$here/pytorch_bench.py" --model "$model" --export-onnx "$out/$model.onnx" 2>/dev/null || echo "torch.onnx.export of $model failed" >> "$notes"
done
for round in $(seq 1 "$rounds"); do
  for model in $models; do
    onnx="$out/$model.onnx"
    for batch in $batches; do
      [[ " $modes " == *" infer "* ]] || continue
      iterations_for "$batch" infer
      run_incept fast --model "$model" --batch-size "$batch" --engine fast
      run_incept torch --model "$model" --batch-size "$batch" --engine torch
      [[ -f "$onnx" ]] && run_incept onnx --model "$model" --batch-size "$batch" --engine onnx --weights "$onnx"
      # Incept's own export of its model (BatchNorm folded), made in memory: what `incept predict` runs with --engine onnx.
      run_incept onnx-incept-export --model "$model" --batch-size "$batch" --engine onnx
      for engine in eager channels_last torchscript; do
        run_torch "$engine" --model "$model" --batch-size "$batch" --engine "$engine"
      done
      if [[ -n "$tcmalloc" ]]; then
        for engine in channels_last torchscript; do
          LD_PRELOAD="$tcmalloc" run_torch "${engine}_tcmalloc" --model "$model" --batch-size "$batch" --engine "$engine"
        done
      fi
      # The optional bfloat16 paths: Incept's fast engine in bfloat16, PyTorch channels-last under bfloat16 autocast.
      if [[ "$bf16" == on ]]; then
        run_incept fast-bf16 --model "$model" --batch-size "$batch" --engine fast --precision bfloat16
        run_torch channels_last_bf16 --model "$model" --batch-size "$batch" --engine channels_last_bf16
      fi
    done
    [[ " $modes " == *" train "* ]] || continue
    iterations_for "$train_batch" train
    aux=()
    [[ "$model" == googlenet || "$model" == inception_v3 ]] && aux=(--aux)
    run_incept torch --model "$model" --batch-size "$train_batch" --mode train "${aux[@]}"
    run_incept torch-channels-last --model "$model" --batch-size "$train_batch" --mode train "${aux[@]}" --channels-last
    train_engines="eager channels_last"
    if [[ "$bf16" == on ]]; then
      run_incept torch-channels-last-bf16 --model "$model" --batch-size "$train_batch" --mode train "${aux[@]}" --channels-last --precision bfloat16
      train_engines="$train_engines channels_last_bf16"
    fi
    for engine in $train_engines; do
      run_torch "$engine" --model "$model" --batch-size "$train_batch" --mode train --engine "$engine"
    done
    [[ -n "$tcmalloc" ]] && LD_PRELOAD="$tcmalloc" run_torch channels_last_tcmalloc --model "$model" --batch-size "$train_batch" --mode train --engine channels_last
  done
done
for model in $models; do rm -f "$out/$model.onnx"; done
uptime > "$out/load-after.txt"

"$python" "$here/report.py" --results "$results" --notes "$notes" --standins "$out/standins.txt" --load-before "$out/load-before.txt" \
  --load-after "$out/load-after.txt" --command "bench/compare/run.sh --iterations $iterations --warmup $warmup --warmup-seconds $warmup_seconds --threads $threads --models \"$models\" --batches \"$batches\" --modes \"$modes\" --rounds $rounds --bf16 $bf16" \
  --repo "$root" > "$out/report.md"
cat "$out/report.md"
echo "wrote $out/report.md" >&2
