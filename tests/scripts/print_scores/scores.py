"""Trains nothing, but prints like a training script: a loss per epoch, then its score. The
numbers follow from the seed, so a sweep over seeds gives a score per seed."""

import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--epochs", type=int, default=5)
args = parser.parse_args()

for epoch in range(1, args.epochs + 1):
    print(f"epoch {epoch} loss {1.0 / (epoch + args.seed):.4f}")
print("evaluating...")
print(f"score: {0.9 + args.seed / 100:.4f}")
