"""Benchmarks of this package on this machine, each raced or timed in one process; not part of the library.

One module per benchmark, each with `run(config, workdir)` that writes its JSON into the workdir and prints a
Markdown table (the sweep module has one per sweep):

- `memory`: per-device bytes of a LoRA JPO step, compiled ahead of time (`emodistill_jax.lm.memory`).
- `lm_speed`: LoRA training and greedy generation tokens/s against transformers + PEFT.
- `distill`: training tokens/s of the distillation steps (sandbox student, a 0.5B-shaped Qwen2).
- `iql`: IQL updates/s (one configuration, the vmapped grid) against a plain PyTorch IQL (`torch_iql`).
- `sweep`: sandbox sweep throughput, and a sweep against a latency-injected API counterparty.

Run them through the launcher, `python -m launchers.benchmark --config=configs/benchmark.py:<preset>`
(configs/benchmark.py lists the presets). torch and peft are the references, imported only inside functions:
not dependencies of the package.
"""

import os

# PyTorch's OpenMP workers spin after each parallel region, on the cores the JAX side's next step needs: in the
# alternating races that slowed the JAX LoRA step by 13% (4.2 vs 3.7 s) while PyTorch itself was no faster than
# with passive waiting (552 vs 562 tokens/s). Read when libgomp starts, i.e. before torch is first imported;
# a value set in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
