#!/usr/bin/env bash
# Reproduces the shipped checkpoint ptq_conv2x/checkpoints/conv2x_fmnist.pt on a 2-core CPU
# (about 80 minutes; needs the full Fashion-MNIST: apt-get install dataset-fashion-mnist).
#   stage 1: 5 epochs from random init, one-cycle LR peak 0.2  -> 91.60% test top-1 (60 min)
#   stage 2: 2 epochs fine-tuning, one-cycle LR peak 0.03       -> see the checkpoint record
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-ptq_conv2x/checkpoints/conv2x_fmnist.pt}
STAGE1=$(mktemp --suffix=.pt)
trap 'rm -f "$STAGE1"' EXIT
"$PY" -m ptq_conv2x.train --epochs 5 --lr 0.2 --seed 0 --out "$STAGE1"
"$PY" -m ptq_conv2x.train --init "$STAGE1" --epochs 2 --lr 0.03 --seed 0 --out "$OUT"
"$PY" - "$OUT" <<'PYEOF'
import sys, torch
ck = torch.load(sys.argv[1], weights_only=True)
r = ck["record"]
print(f"{sys.argv[1]}: test top-1 {r['test_top1']:.2f}% after "
      f"{r['init_record']['epochs']} + {r['epochs']} epochs, "
      f"{(r['init_record']['train_seconds'] + r['train_seconds']) / 60:.0f} min")
PYEOF
