#!/usr/bin/env bash
# Reproduces the shipped checkpoints lenet_npu/checkpoints/lenet_{fmnist,mnist}.pt on CPU
# (one thread each; the weights are bit-identical on the same machine and torch build).
#   lenet_fmnist.pt: full Fashion-MNIST (60,000 / 10,000; apt-get install
#                    dataset-fashion-mnist), 25 epochs
#   lenet_mnist.pt:  the embedded 4,000 / 1,000 real MNIST digits under data/mnist,
#                    60 epochs (--data-dir pins them even where a full MNIST is installed;
#                    pass a folder with the full MNIST to train on all of it)
# Recorded test top-1 and wall times: see lenet_npu/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
"$PY" -m lenet_npu.train --dataset fashion-mnist --epochs 25 --batch 64 --lr 2e-3 \
    --weight-decay 0.05 --seed 0 --threads 1 --out lenet_npu/checkpoints/lenet_fmnist.pt
"$PY" -m lenet_npu.train --dataset mnist --data-dir data/mnist --epochs 60 --batch 64 \
    --lr 2e-3 --seed 0 --threads 1 --out lenet_npu/checkpoints/lenet_mnist.pt
