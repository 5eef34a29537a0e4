"""JPO (Judge Policy Optimization) of the expression policy, crad domain (any domain with --config.domain=...).

    python -m launchers.train --config=configs/jpo_crad.py:sandbox --workdir=runs/jpo_crad
    python -m launchers.train --config=configs/jpo_crad.py:paper --config.model.path=/models/Qwen2.5-7B-Instruct \
        --config.data.sweep=runs/sweep_crad_api --config.reference_adapter=runs/sft_crad_paper/adapter \
        --workdir=runs/jpo_crad_paper

Offline PPO-clipped surrogate against a frozen reference with judge advantages (docs/formulas.md,
`distill.losses.jpo_loss`): rho = exp(mean response-token log-ratio), A~ = A if A > 0 else kappa A, clip eps 0.2,
K3 anchor lambda 0.04, kappa 1. The policy adapter starts as a copy of the reference adapter.
Variants: --config.reference=base is the IQL+JPO ablation (reference = the base model, the policy starts from a
fresh adapter, no SFT needed); --config.data.subset=all trains on every judged turn instead of the top-25% set;
--config.data.advantage=episode_judge|outcome changes the signal; --config.emotion_free=True strips the emotion
block (the SFT reference it builds is then emotion-free too); --config.train.kappa=0 drops negative advantages.

`paper`: Qwen2.5-7B-Instruct from --config.model.path and the SFT adapter from --config.reference_adapter (clear
errors when unset or missing), bf16 + remat; LoRA r16 alpha 32 dropout 0.05 on q,k,v,o; lr 5e-6, AdamW (0.9, 0.95),
3% warmup then cosine, clip 1.0, effective batch 16 (1 x 16 accumulation on one device; with N devices set
--config.train.micro_batch_size=N or --config.mesh.fsdp=N), prompts up to 1024 tokens, chunked vocabulary
projection; the paper's D_top (top 25% of judged turns by q_t) and sequence probability ratio (train.ratio=product);
1 epoch (the epoch count is our choice). Expected resources (`lm.memory` plan
for exactly this step -- policy + reference pass through one bf16 base, backward through the LoRA only, at 1
sequence x 1024 tokens per device with remat): 22.5 GB on one device (arguments 15.4 GB, of which the base is
15.2 GB, the adapter 40 MB, the AdamW moments 81 MB; temporaries 7.1 GB): one 80 GB GPU; 12.5 GB per device on 4
devices with the base FSDP-sharded (--config.mesh.fsdp=4 --config.train.micro_batch_size=4): 4 x 24 GB.

`sandbox` (the default): student + SFT reference built in the workdir when not given (the student ~11-15 min the
first time; pass --config.model.path=runs/student_crad/student --config.data.sweep=runs/student_crad/sandbox_sweep
--config.reference_adapter=runs/sft_crad/adapter to reuse them), then 40 JPO steps of 16 x 192 tokens (640 examples,
a little over one epoch of the ~500-turn top set), measured 0.27 s per step (11.5k tokens/s, two passes) on 2 CPU
cores: 26 s with student and reference given. lr 1e-3: a tiny model and a short run need a far larger step than
the paper's 5e-6 (at 5e-5 the KL stayed below 1e-4); at 1e-3 the KL to the SFT reference is 0.0004 here (median
of the last quarter; 0.0007-0.0016 after the main job's 60 steps of 8), mean rho 1.00, no clipping; lr 3e-3
raises it three- to fivefold without raising validation utility (docs/sandbox.md).
`smoke`: seconds, for tests.
Produces adapter/ (PEFT), checkpoints/ (orbax; re-running resumes), metrics.jsonl (loss, pg, kl, rho_mean,
clip_frac, kl_gt_05, advantage stats, lr, grad_norm, tokens/s per step), distill_report.json (stability summary),
and sft/ (the reference, when built here).
"""

from configs.sft_crad import distill_config


def get_config(arg: str | None = None):
  c = distill_config("jpo", arg)
  # D_top, as the paper (Eq. 19, Alg. 3). In the main job (crad, the shipped table) JPO after SFT on every judged turn
  # LOWERED held-out utility (IQL+SFT 0.365 -> IQL+SFT+JPO 0.322; kappa 0: 0.325), on D_top it raised it (0.396)
  # Advantage: the sandbox presets' judge advantage per message number (sft_crad). Against outcome advantages (R(tau)
  # z-scored per scenario) on a validation set of train scenarios (every 4th, 5 fresh episodes each, shipped table;
  # IQL+SFT 0.325), IQL+SFT+JPO: judge 0.338, outcome 0.308, outcome 240 steps 0.327, outcome on every turn 0.301,
  # all within the +-0.04 CIs; so the judge's stays
  c.data.subset = "top"
  if c.preset == "paper":
    c.train.ratio = "product"  # the paper's pi(y|x) / pi_ref(y|x); ours (sequence mean) elsewhere
  c.train.lr = 5e-6 if c.preset == "paper" else 1e-3
  if c.preset == "sandbox":
    c.train.steps = 40
  return c
