"""Benchmarks: the 7B memory plan, Flax-vs-PyTorch speed and distillation training speed on this CPU.

    python -m launchers.benchmark --config=configs/benchmark.py:memory_7b --workdir=runs/benchmark
    python -m launchers.benchmark --config=configs/benchmark.py --workdir=runs/benchmark   # :speed
    python -m launchers.benchmark --config=configs/benchmark.py:smoke --workdir=/tmp/bench_smoke
    python -m launchers.benchmark --config=configs/benchmark.py:sweep --workdir=runs/benchmark
    python -m launchers.benchmark --config=configs/benchmark.py:sweep_api --workdir=runs/benchmark
    python -m launchers.benchmark --config=configs/benchmark.py:distill --workdir=runs/benchmark

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
reported apart; PyTorch's OpenMP workers wait passively (`benchmarks/__init__.py`). About 3-5 min on the
2-core CPU; measurements in the README's speed table.

`iql` writes `<workdir>/iql.json`: 64k transitions, batch 256, hidden 256, 28 actions; one
configuration's updates/s and the paper's 18-configuration grid as one vmapped program, compile time
apart, and the FLOP rate as a share of this CPU's FP32 peak (cores x MHz x 32).

`distill` writes `<workdir>/distill.json` and prints a Markdown table: training tokens/s of the distillation
steps, every model randomly initialised in memory (nothing downloaded or saved), synthetic sequences of 256
tokens whose last 32 carry the loss; 1 warm-up (compile) step then 3 timed steps, median reported, compile
seconds = first step minus the median, the process's peak RSS so far, os.getloadavg() before and after.
(a) The sandbox student (`student.default_settings()`, vocab 4096, fp32, 1.26M parameters), batch 8 x 256:
full-parameter steps through `student.pretrain` itself, and LoRA SFT steps through the distill trainer's own
jitted step (`trainer.compiled_step`) with configs/sft_crad.py's sandbox adapter and trainer settings (r16 on
q,k,v,o; full logits). (b) A Qwen2.5-0.5B-shaped Qwen2 (494M parameters: vocab 151936, hidden 896, 24 layers,
14 / 2 heads of 64, intermediate 4864, tied embeddings, q/k/v bias) through the same trainer step with the
paper preset's settings (bf16 base, per-layer remat, r16 on q,k,v,o, 128-token logit chunks), batch 1 x 256;
`--config.distill.qwen.dtypes="('bfloat16','float32')"` adds fp32. (c) The 7B per-device totals above, read
from `<workdir>/memory_7b.json` when a memory_7b run left one there, else quoted from this docstring (marked
"quoted": true). About 3.5 min. Measured on the 2 shared cores at load average 4.5-5.6 (two runs): student
full-parameter 3.0k-4.6k tokens/s (0.44-0.68 s per step, compile 7 s), student LoRA 2.5k-4.0k tokens/s
(0.51-0.83 s per step); 0.5B bf16 16-17 tokens/s (14.8-16.2 s per step, compile 75-85 s after a 37-39 s
random init, peak RSS 6.5 GB); 0.5B fp32 (separate run) 14 tokens/s (17.7 s per step, compile 51 s, 6.0 GB).

`smoke` runs tiny versions of memory, speed and distill (the tests use it): 65 s at load average 5 on the 2
cores, ~25 s of it distill's three small compiles (memory + speed alone: 42 s at load 4).

`sweep` and `sweep_api` (`benchmarks/sweep.py`, see its docstring) write `<workdir>/sweep.json` /
`sweep_api.json`: the 8,000-episode sandbox sweep (target <= 5 min on 2 CPU cores; 68-71 s measured
under other load, 215 s under heavy load) and a sweep against an API counterparty with 200 ms latency at
concurrency 32 against the latency bound C / L (target >= 80%; endpoint "server" is bounded by the
server's single generation thread on this CPU, ~20%; "stub" isolates the client side).
"""

from ml_collections import config_dict

from configs.sft_crad import distill_config
from configs.student_crad import student_settings

# Qwen2.5-0.5B(-Instruct)'s shapes (public config.json): 494M parameters, tied embeddings, q/k/v bias.
QWEN25_05B = {
    "model_type": "qwen2", "vocab_size": 151936, "hidden_size": 896, "intermediate_size": 4864,
    "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "head_dim": 64,
    "hidden_act": "silu", "max_position_embeddings": 32768, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
    "tie_word_embeddings": True, "torch_dtype": "bfloat16", "use_sliding_window": False,
}


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
  c = config_dict.ConfigDict()  # arguments of benchmarks.sweep.sandbox_sweep_benchmark
  c.num_scenarios = 80
  c.seeds = 100
  c.domain = "crad"
  return c


def _sweep_api() -> config_dict.ConfigDict:
  c = config_dict.ConfigDict()  # arguments of benchmarks.sweep.api_sweep_benchmark
  c.latency_ms = 200.0
  c.concurrency = 32
  c.episodes = 256
  c.max_messages = 6
  c.max_tokens = 4
  c.temperature = 0.7
  c.domain = "student"
  c.endpoint = "server"  # or "stub": no model, the client side alone
  return c


def _distill() -> config_dict.ConfigDict:
  """Settings taken from the stage configs, so the benchmark times what `launchers.train` would run."""
  sandbox, paper = distill_config("sft", "sandbox"), distill_config("sft", "paper")
  c = config_dict.ConfigDict()
  c.seq_len = 256
  c.response_tokens = 32  # loss-mask tokens at the end of each sequence (the sandbox prompts are ~90%)
  c.warmup_steps = 1  # untimed (the first one compiles), then:
  c.steps = 3  # timed steps, median reported
  c.seed = 0
  c.student = student_settings("sandbox")  # random init, vocab 4096; batch_size = the batch of both cases
  c.student.batch_size = 8
  c.student_dtype = sandbox.model.dtype  # float32
  c.student_lora = sandbox.lora  # r16, alpha 32, dropout 0.05 on q,k,v,o
  c.student_train = sandbox.train  # the SFT sandbox preset's trainer settings (full logits)
  c.student_train.batch_size = c.student.batch_size
  c.qwen = config_dict.ConfigDict()
  c.qwen.hf = dict(QWEN25_05B)
  c.qwen.batch = 1
  c.qwen.dtypes = (paper.model.dtype,)  # bfloat16, as the paper preset loads real checkpoints; or float32
  c.qwen.remat = paper.model.remat  # True: per-layer remat, as the paper preset
  c.qwen.lora = paper.lora  # r16, alpha 32, dropout 0.05 on q,k,v,o
  c.qwen.train = paper.train  # the SFT paper preset's trainer settings (128-token logit chunks)
  c.qwen.train.batch_size = c.qwen.batch
  c.qwen.train.micro_batch_size = None
  return c


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  config = config_dict.ConfigDict()
  config.workdir = "runs/benchmark"
  config.memory = _memory()
  config.speed = _speed()
  config.sweep = _sweep()
  config.sweep_api = _sweep_api()
  config.iql = config_dict.ConfigDict(dict(transitions=65_536, updates=1000, repeats=5, grid_seeds=(0,), grid_updates=200,
                                           reference_updates=200, torch_threads=0))  # 0 = os.cpu_count()
  config.distill = _distill()
  if arg == "iql":  # IQL updates/s: one configuration and the 18-configuration vmapped grid
    config.run = ("iql",)
    return config
  if arg in (None, "", "speed"):
    config.run = ("speed",)
    return config
  if arg == "memory_7b":
    config.run = ("memory",)
    return config
  if arg == "distill":
    config.run = ("distill",)
    return config
  if arg in ("sweep", "sweep_api"):
    config.run = (arg,)
    return config
  if arg == "smoke":
    config.run = ("memory", "speed", "distill")
    m = config.memory
    m.model, m.seq_lens, m.remats, m.device_setups, m.logit_chunk = "tiny", (256,), ("ordered",), ((4, 4),), 64
    s = config.speed
    s.vocab, s.hidden, s.layers, s.heads, s.kv_heads, s.intermediate = 256, 64, 2, 4, 2, 128
    s.batch, s.seq_len, s.train_steps, s.gen_batch, s.gen_prompt, s.gen_new, s.gen_runs = 2, 32, 2, 2, 8, 8, 1
    d = config.distill
    d.seq_len, d.response_tokens, d.steps = 32, 8, 2
    d.student = student_settings("smoke")
    d.student.batch_size = d.student_train.batch_size = 2
    d.qwen.hf.update(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, head_dim=16)
    d.qwen.remat = False  # halves the smoke compile; the remat path is the paper preset's (the real run's)
    return config
  raise ValueError(f"unknown preset {arg!r} for configs/benchmark.py; expected speed, memory_7b, sweep, "
                   "sweep_api, iql, distill or smoke")
