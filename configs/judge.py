"""Judge annotation of a sweep: a 1-10 score per focal utterance, plus episode-judge scores.

    python -m launchers.judge --config=configs/judge.py:sandbox --config.sweep=runs/sweep_crad --workdir=runs/sweep_crad
    python -m launchers.judge --config=configs/judge.py:paper --config.sweep=runs/sweep_crad_api --workdir=...

`sandbox` uses the built-in rubric judge (seconds for 8,000 episodes); `paper` an LLM judge at
temperature 0 with 64 tokens and the per-domain rubric (EMODISTILL_* environment variables).
Writes turn_scores.jsonl, episode_scores.jsonl and judge_manifest.json; re-running resumes.
"""

from emodistill_jax.agents.settings import agent
from emodistill_jax.sweep.settings import judge_config


def get_config(arg: str | None = None):
  c = judge_config()  # the sandbox preset
  if arg in (None, "", "sandbox", "smoke"):
    return c
  if arg == "paper":
    c.judge = agent("api", temperature=0.0, max_tokens=64)
    return c
  raise ValueError(f"unknown preset {arg!r} for configs/judge.py; expected sandbox, paper or smoke")
