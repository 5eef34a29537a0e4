"""Judge annotation of a sweep: a 1-10 score per focal utterance, plus episode-judge scores.

    python -m launchers.judge --config=configs/judge.py:sandbox --config.sweep=runs/sweep_crad --workdir=runs/sweep_crad
    python -m launchers.judge --config=configs/judge.py:paper --config.sweep=runs/sweep_crad_api --workdir=...

`sandbox` uses the built-in rubric judge (seconds for 8,000 episodes); `paper` an LLM judge at
temperature 0 with 64 tokens and the per-domain rubric (EMODISTILL_* environment variables).
Writes turn_scores.jsonl, episode_scores.jsonl and judge_manifest.json; re-running resumes.
"""

from ml_collections import config_dict

from configs.common import agent


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  c = config_dict.ConfigDict()
  c.stage = "judge"
  c.sweep = config_dict.placeholder(str)  # the sweep's workdir (episodes.jsonl + manifest.json)
  c.concurrency = 64
  c.judge = agent("sandbox", temperature=0.0, max_tokens=64)
  if arg in (None, "", "sandbox", "smoke"):
    return c
  if arg == "paper":
    c.judge = agent("api", temperature=0.0, max_tokens=64)
    return c
  raise ValueError(f"unknown preset {arg!r} for configs/judge.py; expected sandbox, paper or smoke")
