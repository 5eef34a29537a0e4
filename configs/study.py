"""Studies after a finished pipeline run (`launchers.pipeline`): the JPO kappa and lambda_KL sweeps, the
per-emotion prompting study, the cross-domain transfer matrix and focal x counterparty tournaments
(`emodistill_jax.evaluation.studies`).

    python -m launchers.study --config=configs/study.py:kappa --workdir=runs/kappa_crad
    python -m launchers.study --config=configs/study.py:lambda --workdir=runs/lambda_crad
    python -m launchers.study --config=configs/study.py:emotion --workdir=runs/emotion_crad
    python -m launchers.study --config=configs/study.py:transfer --workdir=runs/transfer
    python -m launchers.study --config=configs/study.py:tournament --workdir=runs/tournament_crad

Every study reads the pipeline workdir (--config.pipeline_workdir; default runs/pipeline_<domain>, for transfer a
pattern with {domain}) and reuses its sweep, IQL selector, student and adapters through `Pipeline.components()`;
`config.pipeline` must be the pipeline config that made it (the `sandbox` pipeline preset here, `smoke` in the
*_smoke presets; for a paper pipeline pass the same overrides as there, e.g. --config.pipeline.model_path=...).

- `kappa` (default): for kappa in {0, 0.25, 0.5, 0.75, 1} (--config.kappas) a JPO adapter trained with the pipeline's
  JPO stage config and train.kappa = kappa into <workdir>/kappa_<k>/, then --config.method (IQL+SFT+JPO; IQL+JPO or
  SFT+JPO (emotion-free) use the jpo_base / jpo_free stage config) evaluated with it on the held-out split.
  Writes kappa_sweep.json ({kappa: metrics}), kappa_sweep.md and kappa_sweep.png (Utility and Success vs kappa).
  At sandbox sizes: 5 x the pipeline's JPO stage (30 steps) plus 5 evaluations of 100 episodes.
- `lambda`: the same JPO hyper-parameter sweep over the K3 anchor's coefficient train.kl_coef = lambda_KL in
  {0.01, 0.04, 0.1, 0.5} (--config.lambdas) into <workdir>/lambda_<l>/ (a JPO run + lambda.json + evaluate/).
  Writes lambda_sweep.json ({lambda: metrics}), lambda_sweep.md and lambda_sweep.png.
- `emotion`: the per-emotion prompting study (the paper's Figure 1) as the pipeline's emotion_study stage, with
  --config.runs runs per (emotion, held-out scenario) (default 3; the paper: 20): every focal turn judged by the
  pipeline's judge (config.pipeline.judge), mean judge reward per emotion with Welch CIs against neutral. Writes
  emotion_study/fixed_<emotion>/{episodes,turn_scores}.jsonl, emotion_study.json, .md and .png.
- `transfer`: --config.methods with the selector / adapters of each domain's pipeline on every domain's held-out
  split (needs one finished pipeline per domain). Writes transfer.json ({method: {trained on: {evaluated on:
  metrics}}}), transfer.md and one Utility heatmap per method.
- `tournament`: --config.methods against every entry of config.counterparties (the sandbox, the pipeline's student
  as the counterparty, or an `api` endpoint added with --config.counterparties...). Writes tournament.json
  ({domain: {focal: {counterparty: metrics}}}), tournament.md and a Utility heatmap.

Re-running with the same workdir resumes: finished JPO runs, episodes and judge scores are reused. `smoke`
(= `kappa_smoke`), `lambda_smoke`, `emotion_smoke`, `transfer_smoke` and `tournament_smoke` cut the held-out split
to 3 scenarios x 1 iteration (emotion: 1 run) of at most 8 messages (--config.max_scenarios, --config.iterations,
--config.max_messages), for tests.
"""

from ml_collections import config_dict

from configs import pipeline
from emodistill_jax.agents.settings import agent
from emodistill_jax.evaluation.studies import KAPPAS, LAMBDAS

PRESETS = ("kappa", "lambda", "emotion", "transfer", "tournament")


def student_counterparty() -> config_dict.ConfigDict:
  c = config_dict.ConfigDict()
  c.kind = "student"
  c.path = config_dict.placeholder(str)  # None: the pipeline's student
  c.adapter = config_dict.placeholder(str)  # a PEFT folder, or None for the base student
  return c


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  preset = arg or "kappa"
  if preset == "smoke":
    preset = "kappa_smoke"
  study, _, size = preset.partition("_")
  if study not in PRESETS or size not in ("", "smoke"):
    raise ValueError(f"unknown preset {arg!r} for configs/study.py; expected one of {', '.join(PRESETS)}, "
                     f"{', '.join(p + '_smoke' for p in PRESETS)} or smoke")
  smoke = size == "smoke"
  c = config_dict.ConfigDict()
  c.stage = "study"
  c.study = study
  c.preset = preset
  c.domain = "crad"
  c.progress = not smoke
  c.pipeline_workdir = config_dict.placeholder(str)  # None: runs/pipeline_<domain>; {domain} is filled in
  c.pipeline = pipeline.get_config("smoke" if smoke else "sandbox")
  c.max_scenarios = config_dict.placeholder(int)  # None: the whole held-out split (20)
  c.iterations = config_dict.placeholder(int)  # None: the pipeline's eval.iterations
  c.max_messages = config_dict.placeholder(int)  # None: the evaluation's cap (30)
  # kappa and lambda: the JPO method evaluated and the values swept
  c.method = "IQL+SFT+JPO"
  c.kappas = KAPPAS
  c.lambdas = LAMBDAS
  # emotion: runs per (emotion, held-out scenario)
  c.runs = 3
  # transfer
  c.domains = ("crad", "disaster", "hospital", "student")
  # transfer and tournament
  c.methods = {"transfer": ("IQL", "IQL+SFT+JPO"), "tournament": ("Random", "IQL", "IQL+SFT", "IQL+SFT+JPO")}.get(
      study, ("IQL",))
  c.counterparties = config_dict.ConfigDict()
  c.counterparties.sandbox = agent("sandbox")
  c.counterparties.student = student_counterparty()
  if smoke:
    c.max_scenarios = 3
    c.iterations = 1
    # short dialogues: the runner does not cut a student counterparty's prompts to the student's training
    # length, so every longer transcript is a new prompt shape (a compile) for the toy model
    c.max_messages = 8
    c.runs = 1
    c.domains = ("crad", "disaster")
    c.methods = {"transfer": ("IQL",), "tournament": ("Random", "IQL")}.get(study, ("IQL",))
  return c
