"""A-LoL (advantage-weighted offline RL) of the expression policy, crad domain (any domain with --config.domain=...).

    python -m launchers.train --config=configs/alol_crad.py:sandbox --workdir=runs/alol_crad
    python -m launchers.train --config=configs/alol_crad.py:paper --config.model.path=/models/Qwen2.5-7B-Instruct \
        --config.data.sweep=runs/sweep_crad_api --config.reference_adapter=runs/sft_crad_paper/adapter \
        --workdir=runs/alol_crad_paper

Loss (`distill.losses.alol_loss`): max(A, 0) x clip(exp(mean token log-ratio to the reference), 0.1, 1.9) x
response NLL, on the positive-advantage turns (`data.subset=positive`; `all` keeps the rest at weight 0). The
reference is the frozen SFT adapter (or --config.reference=base) and the policy starts as its copy. Same model,
LoRA, optimizer, schedule, batch and resource figures as configs/jpo_crad.py (the step runs the same two passes);
lr 5e-6 for `paper` (JPO's; the A-LoL paper's own setting is for a different model), 1e-3 for `sandbox`
(40 steps, ~3 min after the prerequisites, as JPO's). `smoke`: seconds, for tests.
Produces adapter/ (PEFT), checkpoints/, metrics.jsonl, distill_report.json, and sft/ when the reference is built here.
"""

from configs.sft_crad import distill_config


def get_config(arg: str | None = None):
  c = distill_config("alol", arg)
  c.data.subset = "positive"
  c.train.lr = 5e-6 if c.preset == "paper" else 1e-3
  if c.preset == "sandbox":
    c.train.steps = 40
  return c
