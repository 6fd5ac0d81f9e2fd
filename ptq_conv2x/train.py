"""Train the float Conv2xNet (seeded, reproducible on CPU) and write a checkpoint.

    python -m ptq_conv2x.train --dataset fashion-mnist --epochs 5 \
        --out ptq_conv2x/checkpoints/conv2x_fmnist.pt

SGD + Nesterov with a one-cycle learning rate, random +-2 pixel shifts (one per batch) and
horizontal flips, bfloat16 autocast on CPU (recipe in ptq_conv2x/network.py, loop in
common/training.py).
"""
from common.training import run_train
from ptq_conv2x.network import NETWORK

if __name__ == "__main__":
    run_train(NETWORK)
