"""Benchmarks: the 7B memory plan, Flax-vs-PyTorch LM speed, distillation training speed, IQL speed against a
plain PyTorch IQL, and sweep throughput on this CPU. The code is in `benchmarks/`, one module per benchmark.

    python -m launchers.benchmark --config=configs/benchmark.py:memory_7b --workdir=runs/benchmark
    python -m launchers.benchmark --config=configs/benchmark.py --workdir=runs/benchmark   # speed
    python -m launchers.benchmark --config=configs/benchmark.py:distill --workdir=runs/benchmark
    python -m launchers.benchmark --config=configs/benchmark.py:iql --workdir=runs/benchmark

See configs/benchmark.py for what each preset measures and writes.
"""

from __future__ import annotations

from benchmarks import distill, iql, lm_speed, memory, sweep
from launchers import common

# The names config.run may hold (each also the config field with that benchmark's settings), in the order they
# run: the memory plan first, since it asks jax for simulated CPU devices before anything starts the backend.
BENCHMARKS = (
    ("memory", memory.run),
    ("speed", lm_speed.run),
    ("distill", distill.run),
    ("sweep", sweep.run_sandbox),
    ("sweep_api", sweep.run_api),
    ("iql", iql.run),
)


def main(config) -> None:
  workdir = common.workdir(config.workdir)
  for name, run in BENCHMARKS:
    if name in config.run:
      run(config[name], workdir)


if __name__ == "__main__":
  common.run(main)
