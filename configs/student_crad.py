"""The sandbox student for the crad domain (any domain with --config.domain=...): the "vanilla SLM" of
docs/sandbox.md that the SFT, JPO and A-LoL stages adapt with LoRA in the sandbox.

    python -m launchers.train --config=configs/student_crad.py:sandbox --workdir=runs/student_crad

Needs nothing: it makes (or resumes) a sandbox sweep + judge run in the workdir (80 train scenarios x 5 seeds,
~2,300 judged focal turns, ~10 s), trains a 2,048-token byte-level BPE tokenizer with the ChatML template on its
prompts and responses, and pretrains a tiny Qwen2 (hidden 128, 4 layers, 4 heads / 2 kv heads, intermediate 352,
tied embeddings, 1.0M parameters) from scratch with full parameters: next-token loss on the whole sequence for the
first half of the steps, then on the response alone, the digit tokens weighted 4x (`emodistill_jax.distill.student`
says why). Produces <workdir>/student/ (config.json, model.safetensors, tokenizer files; `load_pretrained` and
transformers' AutoModelForCausalLM read it), with student_report.json (loss, tokens/s, greedy samples and the share
that state an offer) and pretrain_metrics.jsonl, and <workdir>/distill_report.json. 4,500 steps of 8 x 192 tokens
(lr 6e-3; the vocabulary projection only at the target positions; the prompt's tail keeps the last turns, the offers
block, the style block and the cue): 11 min on this machine's 2 quiet CPU cores (12k tokens/s), once per settings and
data (the students cache, docs/overview.md). The step count was chosen on a validation set of train scenarios
(IQL+SFT 0.325 / 0.357 / 0.393 at 1,500 / 3,000 / 4,500 steps; docs/sandbox.md). On the main job's 60-seed crad
sweep the response loss falls to 0.25 (digits: 1.5 nats each); its held-out turns carry the requested emotion's cue
(97%) and state an offer, and the student closes 96% of the held-out crad negotiations against the sandbox
counterparty at utility 0.253 (the teacher: 76% / 0.289; under the redrawn table of seed 29: 91% / 0.354).
The other stages use it with --config.model.path=runs/student_crad/student
--config.data.sweep=runs/student_crad/sandbox_sweep (or build their own copy when model.path is unset).
Presets: sandbox (default), smoke (seconds, for tests). There is no paper preset: the paper adapts
Qwen2.5-7B-Instruct (configs/sft_crad.py:paper).
"""

from ml_collections import config_dict

from emodistill_jax.distill.student import default_settings


def sandbox_data(c: config_dict.ConfigDict, preset: str) -> None:
  """The judged sweep a stage trains on: config.data.sweep, or a sandbox sweep made in the workdir."""
  c.data = config_dict.ConfigDict()
  c.data.sweep = config_dict.placeholder(str)  # a judged sweep's folder; None: make a sandbox one (not for paper)
  c.data.judge = config_dict.placeholder(str)  # judge outputs, if not in the sweep folder
  c.data.sandbox_scenarios = 4 if preset == "smoke" else 80
  c.data.sandbox_seeds = 3 if preset == "smoke" else 5
  c.data.sandbox_first_seed = 0


def student_settings(preset: str) -> config_dict.ConfigDict:
  s = default_settings()
  if preset == "smoke":
    s.vocab_size = 384
    s.hidden_size = 32
    s.num_layers = 2
    s.num_heads = 4
    s.num_kv_heads = 2
    s.intermediate_size = 64
    s.max_length = 192
    s.steps = 30
    s.batch_size = 4
    s.lr = 1e-2
    s.coverage_episodes = 1
    s.samples = 0  # the smoke student is too small to write offers; tests check its loss
  return s


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  preset = arg or "sandbox"
  if preset not in ("sandbox", "smoke"):
    raise ValueError(f"unknown preset {arg!r} for configs/student_crad.py; expected sandbox or smoke")
  c = config_dict.ConfigDict()
  c.stage = "student"
  c.preset = preset
  c.domain = "crad"
  c.progress = preset != "smoke"
  c.build_prerequisites = True
  sandbox_data(c, preset)
  c.student = student_settings(preset)
  return c
