"""Train the float LeNet-5 (seeded, reproducible on CPU) and write a checkpoint.

    python -m lenet_npu.train --dataset fashion-mnist --epochs 20 \
        --out lenet_npu/checkpoints/lenet_fmnist.pt

Adam (AdamW when --weight-decay > 0) with a cosine learning-rate decay to zero, NLL loss
on the model's log-softmax (recipe in lenet_npu/network.py), random shifts of up to 2
pixels for every dataset and horizontal flips only for Fashion-MNIST and CIFAR-10 (never
for digits; common/training.py). MNIST falls back to the embedded 4,000/1,000 real digits
under data/mnist when no full MNIST is installed or given with --data-dir.
"""
from common.training import run_train
from lenet_npu.network import NETWORK

if __name__ == "__main__":
    run_train(NETWORK)
