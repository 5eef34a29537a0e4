"""LoRA SFT of the expression policy on the best turns, crad domain (any domain with --config.domain=...).

    python -m launchers.train --config=configs/sft_crad.py:sandbox --workdir=runs/sft_crad
    python -m launchers.train --config=configs/sft_crad.py:paper --config.model.path=/models/Qwen2.5-7B-Instruct \
        --config.data.sweep=runs/sweep_crad_api --workdir=runs/sft_crad_paper

Data: the top 25% of judged focal turns by q_t = r_t + 0.5 R(tau) (`data.subset`, `data.signal`, `data.quantile`),
cross-entropy on response + end-of-turn tokens. Emotion-free variant: --config.emotion_free=True (the emotion
block is replaced by the neutral line in training; use the same at inference).

`paper`: Qwen2.5-7B-Instruct from --config.model.path (a clear error if unset or missing) in bf16 with per-layer
remat; LoRA r16, alpha 32, dropout 0.05 on q,k,v,o; AdamW (0.9, 0.95), 3% warmup then cosine, clip 1.0,
effective batch 16 (micro-batch 1 x 16 accumulation steps on one device; with N devices set
--config.train.micro_batch_size=N, or --config.mesh.fsdp=N to shard the base), prompts up to 1024 tokens, chunked
vocabulary projection (256-token chunks), 2 epochs (the paper's). The paper gives no SFT learning rate: 1e-4 is
our choice (docs/fidelity.md). Expected resources (`lm.memory` plan: XLA's per-device estimate for a policy + reference
LoRA step at 1 sequence x 1024 tokens per device, bf16, remat): 22.5 GB on one device (15.4 GB arguments: the bf16
base 15.2 GB, adapter 40 MB, AdamW moments 81 MB; 7.1 GB temporaries), so one 80 GB GPU; 12.5 GB per device on 4
devices with the base FSDP-sharded (--config.mesh.fsdp=4 --config.train.micro_batch_size=4), so 4 x 24 GB.
SFT runs no reference pass, so it needs a little less.

`sandbox` (the default): the sandbox student (configs/student_crad.py) adapted on a sandbox sweep, both built in
the workdir when --config.model.path / --config.data.sweep are unset (the student ~11-15 min the first time, then
from the students cache), then 1 epoch of the top set (the best quarter of the 1,927 judged turns with an
advantage at each message number, of the sweep's 2,315: 31 LoRA steps of 16 x 192 tokens, the student's length;
lr 5e-3), measured 0.18 s per step (16.8k tokens/s) on 2 CPU cores: 24 s with the student given. `smoke`: seconds,
for tests.
Produces: adapter/ (PEFT: adapter_model.safetensors + adapter_config.json), checkpoints/ (orbax; re-running
with the same workdir resumes), metrics.jsonl (per step), distill_report.json (data counts, final metrics,
stability summary, greedy samples).
"""

from ml_collections import config_dict

from configs.common import distributed
from configs.student_crad import sandbox_data, student_settings
from emodistill_jax.distill import trainer

PRESETS = ("sandbox", "paper", "smoke")


def distill_config(stage: str, arg: str | None) -> config_dict.ConfigDict:
  """The fields every LoRA stage (sft, jpo, alol) shares, per preset; the stage files adjust them."""
  preset = arg or "sandbox"
  if preset not in PRESETS:
    raise ValueError(f"unknown preset {arg!r} for configs/{stage}_crad.py; expected {', '.join(PRESETS)}")
  c = config_dict.ConfigDict()
  c.stage = stage
  c.preset = preset
  c.domain = "crad"
  c.progress = preset != "smoke"
  c.emotion_free = False
  # sandbox / smoke: a missing sweep, student or SFT reference is built in the workdir; paper: required paths
  c.build_prerequisites = preset != "paper"
  sandbox_data(c, preset)
  # judge advantages and the top set compared among turns with the same message number (sandbox), or pooled per
  # scenario / over the sweep (paper): the sandbox judge scores anchoring, so pooled, openings fill the top set and
  # late concessions get negative advantages (docs/fidelity.md). smoke: 3 episodes per scenario are too few for
  # per-message-number advantages (groups of at least 4), so pooled
  c.data.advantage = "turn_judge_by_turn" if preset == "sandbox" else "turn_judge"  # | episode_judge | outcome
  c.data.subset = "top"  # top | all | positive
  c.data.signal = "hybrid"  # what "top" ranks by: hybrid (q_t) | judge | return | advantage
  c.data.quantile = 0.75
  c.data.top_by_turn = preset != "paper"
  c.student = student_settings(preset)  # used only when the student has to be built
  c.data.max_length = c.student.max_length  # the sandbox student's own training length (paper: 1024, below)
  c.data.bucket_multiple = 64
  c.data.drop_unparsed = False
  c.model = config_dict.ConfigDict()
  c.model.path = config_dict.placeholder(str)  # an HF folder; None: the sandbox student (built if needed)
  c.model.dtype = "float32"
  c.model.remat = False
  c.lora = config_dict.ConfigDict()
  c.lora.rank = 16
  c.lora.alpha = 32.0
  c.lora.dropout = 0.05
  c.lora.targets = ("q_proj", "k_proj", "v_proj", "o_proj")
  c.reference = "sft"  # jpo / alol: "sft" (the frozen SFT adapter) | "base" (the IQL+JPO ablation)
  c.reference_adapter = config_dict.placeholder(str)  # the SFT adapter folder; None: built in <workdir>/sft
  c.mesh = config_dict.ConfigDict()
  c.mesh.devices = 0  # 0: all devices
  c.mesh.fsdp = 1  # > 1: shard the base over this many devices
  c.distributed = distributed()  # several hosts: docs/multihost.md
  c.eval_samples = 4  # greedy samples on training prompts in the report (0: none)
  c.train = trainer.default_config()
  c.train.algorithm = stage
  c.train.epochs = 1.0
  c.train.batch_size = 16
  c.train.lr = 5e-3 if preset != "paper" else 1e-4
  c.train.checkpoint_every = 20
  if preset == "paper":
    c.train.epochs = 2.0 if stage == "sft" else 1.0  # the paper's 2 SFT epochs; JPO / A-LoL: 1 (our choice)
    c.data.max_length = 1024
    c.data.bucket_multiple = 128
    c.model.dtype = "bfloat16"
    c.model.remat = True
    c.train.micro_batch_size = 1
    c.train.logit_chunk = 128
    c.train.checkpoint_every = 100
    c.eval_samples = 0
  if preset == "smoke":
    c.data.bucket_multiple = 0  # powers of two: few shapes
    c.lora.rank = 4
    c.lora.alpha = 8.0
    c.train.steps = 4
    c.train.batch_size = 4
    c.train.checkpoint_every = 2
    c.eval_samples = 0
  if stage != "sft":  # JPO / A-LoL: the SFT trainer settings that build their reference when it is not given
    c.reference_train = distill_config("sft", arg).train
  return c


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  return distill_config("sft", arg)
