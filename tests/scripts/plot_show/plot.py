"""Draws two figures and shows each, as a script run on a desktop would, then leaves
``--leave-open`` more figures open at exit. It writes no file itself."""

import argparse

import matplotlib.pyplot as plt

parser = argparse.ArgumentParser()
parser.add_argument("--leave-open", type=int, default=0)
args = parser.parse_args()

xs = list(range(10))
plt.plot(xs, [x * x for x in xs], marker="o")
plt.title("squares")
plt.show()

plt.bar(["a", "b", "c"], [3, 1, 2])
plt.title("bars")
plt.show()

for i in range(args.leave_open):
    plt.figure()
    plt.plot([0, 1], [0, i + 1])
    plt.title(f"left open {i + 1}")
print("shown twice, left", args.leave_open, "open")
