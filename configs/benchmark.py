"""Benchmarks: the 7B memory plan and Flax-vs-PyTorch speed on this CPU.

    python -m launchers.benchmark --config=configs/benchmark.py:memory_7b --workdir=runs/benchmark
    python -m launchers.benchmark --config=configs/benchmark.py --workdir=runs/benchmark   # :speed
    python -m launchers.benchmark --config=configs/benchmark.py:smoke --workdir=/tmp/bench_smoke
    python -m launchers.benchmark --config=configs/benchmark.py:sweep --workdir=runs/benchmark
    python -m launchers.benchmark --config=configs/benchmark.py:sweep_api --workdir=runs/benchmark

Needs nothing downloaded: the memory plan compiles Qwen2.5-7B-Instruct's architecture abstractly
(`emodistill_jax.lm.memory.QWEN25_7B`, no weights) and the speed benchmark saves a random Qwen2 with
transformers' `save_pretrained` into the workdir and loads it on both sides.

`memory_7b` writes `<workdir>/memory_7b.json` and prints a Markdown table of per-device bytes for a
LoRA JPO step (batch 1 x {1024, 2048} tokens; remat off / nn.remat / ordered remat; 1 device, and 4
devices with the base replicated or FSDP-sharded; the launcher asks jax for the 4 simulated CPU
devices itself). 18 full 28-layer AOT compiles of 0.5-5 min each: 39 min on the 2-core CPU under
other engineers' load. Expected (per device): 15.4 GB of bf16 base + 0.12 GB LoRA/Adam replicated,
4.0 GB with fsdp=4; with ordered remat 16.2 / 17.4 GB total at 1024 / 2048 tokens on one device,
6.5 / 7.7 GB with fsdp=4; without remat 30.2 / 54.6 GB.

`speed` (default) writes `<workdir>/speed.json`: (a) training tokens/s of forward + backward through a
rank-16 q/k/v/o LoRA with a mean token NLL, our jitted value_and_grad vs PEFT + loss.backward();
(b) greedy generation tokens/s (batch 8, prompt 64, 128 new tokens), our `lm.generate` vs
`model.generate`; fp32 on both sides, hidden 512, 8 layers, 8 heads / 2 kv heads, vocab 32000,
batch 8 x 256 tokens; both sides timed alternately (shared machine), medians; compile times
reported apart. About 4.5 min on the 2-core CPU; measured there: training ~1.5x PyTorch, greedy
generation ~2.6x.

`iql` writes `<workdir>/iql.json`: 64k transitions, batch 256, hidden 256, 28 actions; one
configuration's updates/s and the paper's 18-configuration grid as one vmapped program, compile time
apart, and the FLOP rate as a share of this CPU's FP32 peak (cores x MHz x 32).

`smoke` runs tiny versions of both in well under a minute (the tests use it).

`sweep` and `sweep_api` (`emodistill_jax.sweep.bench`, see its docstring) write `<workdir>/sweep.json` /
`sweep_api.json`: the 8,000-episode sandbox sweep (target <= 5 min on 2 CPU cores; 68-71 s measured
under other load, 215 s under heavy load) and a sweep against an API counterparty with 200 ms latency at
concurrency 32 against the latency bound C / L (target >= 80%; endpoint "server" is bounded by the
server's single generation thread on this CPU, ~20%; "stub" isolates the client side).
"""

from ml_collections import config_dict


def _memory() -> config_dict.ConfigDict:
  c = config_dict.ConfigDict()
  c.model = "qwen2.5-7b"  # the architecture in lm.memory.QWEN25_7B; "tiny" for smoke tests
  c.batch = 1  # sequences per device
  c.seq_lens = (1024, 2048)
  c.remats = ("off", "on", "ordered")  # on = the model's nn.remat; ordered = see lm.memory
  c.device_setups = ((1, 1), (4, 1), (4, 4))  # (devices, fsdp)
  c.matmuls = "native"  # native | as_written (see lm.memory)
  c.logit_chunk = 256
  c.lora_rank = 16
  c.lora_alpha = 32.0
  c.lora_dropout = 0.05
  c.device_gb = (24, 80)
  c.margin = 0.9
  return c


def _speed() -> config_dict.ConfigDict:
  c = config_dict.ConfigDict()
  c.vocab = 32000
  c.hidden = 512
  c.layers = 8
  c.heads = 8
  c.kv_heads = 2
  c.intermediate = 1408
  c.batch = 8
  c.seq_len = 256
  c.lora_rank = 16
  c.lora_alpha = 32.0
  c.lora_dropout = 0.05
  c.train_steps = 10  # timed steps after warm-up, median reported
  c.gen_batch = 8
  c.gen_prompt = 64
  c.gen_new = 128
  c.gen_runs = 3  # timed generate calls after warm-up, median reported
  c.torch_threads = 0  # 0 = os.cpu_count()
  c.seed = 0
  return c


def _sweep() -> config_dict.ConfigDict:
  c = config_dict.ConfigDict()  # arguments of sweep.bench.sandbox_sweep_benchmark
  c.num_scenarios = 80
  c.seeds = 100
  c.domain = "crad"
  return c


def _sweep_api() -> config_dict.ConfigDict:
  c = config_dict.ConfigDict()  # arguments of sweep.bench.api_sweep_benchmark
  c.latency_ms = 200.0
  c.concurrency = 32
  c.episodes = 256
  c.max_messages = 6
  c.max_tokens = 4
  c.temperature = 0.7
  c.domain = "student"
  c.endpoint = "server"  # or "stub": no model, the client side alone
  return c


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  config = config_dict.ConfigDict()
  config.workdir = "runs/benchmark"
  config.memory = _memory()
  config.speed = _speed()
  config.sweep = _sweep()
  config.sweep_api = _sweep_api()
  config.iql = config_dict.ConfigDict(dict(transitions=65_536, updates=1000, repeats=3, grid_seeds=(0,)))
  if arg == "iql":  # IQL updates/s: one configuration and the 18-configuration vmapped grid
    config.run = ("iql",)
    return config
  if arg in (None, "", "speed"):
    config.run = ("speed",)
    return config
  if arg == "memory_7b":
    config.run = ("memory",)
    return config
  if arg in ("sweep", "sweep_api"):
    config.run = (arg,)
    return config
  if arg == "smoke":
    config.run = ("memory", "speed")
    m = config.memory
    m.model, m.seq_lens, m.remats, m.device_setups, m.logit_chunk = "tiny", (256,), ("ordered",), ((4, 4),), 64
    s = config.speed
    s.vocab, s.hidden, s.layers, s.heads, s.kv_heads, s.intermediate = 256, 64, 2, 4, 2, 128
    s.batch, s.seq_len, s.train_steps, s.gen_batch, s.gen_prompt, s.gen_new, s.gen_runs = 2, 32, 2, 2, 8, 8, 1
    return config
  raise ValueError(f"unknown preset {arg!r} for configs/benchmark.py; expected speed, memory_7b, sweep, "
                   "sweep_api, iql or smoke")
