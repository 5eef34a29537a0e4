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
