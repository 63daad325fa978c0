"""Fills ``--mb`` MiB (every page written, so the memory is really used), spins the CPU for
``--cpu-s`` seconds, holds on for ``--hold-s`` and exits. It reports nothing itself."""

import argparse
import time

parser = argparse.ArgumentParser()
parser.add_argument("--mb", type=int, default=200)
parser.add_argument("--cpu-s", type=float, default=1.0)
parser.add_argument("--hold-s", type=float, default=0.5)
args = parser.parse_args()

block = bytearray(b"\x01") * (args.mb * 1024 * 1024)
start = time.process_time()
spins = 0
while time.process_time() - start < args.cpu_s:
    spins += 1
time.sleep(args.hold_s)
print(f"held {len(block) // 1024**2} MiB, spun {spins} times")
