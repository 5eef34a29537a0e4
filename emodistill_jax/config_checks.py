"""Config values checked before any work starts.

Every launcher passes its whole ConfigDict (sub-configs included) through `check_config`, which applies one
rule per field NAME wherever the field sits (`lr` is a positive finite number in the IQL, SFT and JPO configs
alike; a tuple such as `grid.expectile` is checked element by element). Every float anywhere must be finite.
A value that breaks a rule is a `ConfigError` naming the flag that sets it and the allowed range, e.g.

    --config.iql.lr=nan: must be a finite number > 0

Fields set to None (placeholders: "use the default") are not checked. Combinations that depend on the
inputs (a stage's domain against its sweep's) are checked where the inputs are read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from emodistill_jax.errors import ConfigError

Rule = tuple[Callable[[Any], bool], str]


def _num(x) -> bool:
  return isinstance(x, (int, float)) and not isinstance(x, bool)


def _int(x) -> bool:
  return isinstance(x, int) and not isinstance(x, bool)


def host_port(x) -> bool:
  host, _, port = x.rpartition(":") if isinstance(x, str) else ("", "", "")
  return bool(host) and port.isdigit()


def positive(x) -> bool:
  return _num(x) and x > 0


def non_negative(x) -> bool:
  return _num(x) and x >= 0


def unit_interval(x) -> bool:
  return _num(x) and 0 <= x <= 1


def open_unit_interval(x) -> bool:
  return _num(x) and 0 < x < 1


POSITIVE: Rule = (positive, "a finite number > 0")
NON_NEGATIVE: Rule = (non_negative, "a finite number >= 0")
UNIT: Rule = (unit_interval, "a number in [0, 1]")
OPEN_UNIT: Rule = (open_unit_interval, "a number in (0, 1), both ends excluded")
TOP_P: Rule = (lambda x: _num(x) and 0 < x <= 1, "a number in (0, 1]")
AGENT_KINDS = ("sandbox", "api", "student")

RULES: dict[str, Rule] = {
    # optimisation
    **dict.fromkeys(("lr", "steps", "batch_size", "micro_batch_size", "epochs", "updates_per_call",
                     "checkpoint_every", "keep_checkpoints", "target_period", "batch", "n_boot"), POSITIVE),
    # networks and adapters
    **dict.fromkeys(("hidden_dim", "head_dim", "hidden", "rank", "alpha", "max_length"), POSITIVE),
    # IQL, OPE, JPO
    "expectile": OPEN_UNIT, "gamma": UNIT, "tau": UNIT, "beta": NON_NEGATIVE, "max_weight": POSITIVE,
    "grad_clip": POSITIVE, "clip_norm": POSITIVE, "clip_eps": OPEN_UNIT, "kl_coef": NON_NEGATIVE,
    "kappa": UNIT, "kappas": UNIT, "lambdas": NON_NEGATIVE, "dropout": (lambda x: _num(x) and 0 <= x < 1, "a number in [0, 1)"), "quantile": UNIT,
    "heldout_fraction": OPEN_UNIT, "ci": OPEN_UNIT, "warmup_frac": UNIT, "end_lr_ratio": UNIT,
    "weight_decay": NON_NEGATIVE, "b1": (lambda x: _num(x) and 0 <= x < 1, "a number in [0, 1)"),
    "b2": (lambda x: _num(x) and 0 <= x < 1, "a number in [0, 1)"), "eps": POSITIVE,
    "selection_temperature": NON_NEGATIVE, "temperatures": NON_NEGATIVE, "iql_temperature": NON_NEGATIVE,
    # sweeps, evaluation, agents
    **dict.fromkeys(("num_scenarios", "seeds_per_scenario", "max_messages", "concurrency", "max_concurrency",
                     "num_shards", "iterations", "study_iterations", "runs", "max_tokens", "max_new_tokens",
                     "timeout", "max_scenarios", "sandbox_scenarios", "sandbox_seeds"), POSITIVE),
    **dict.fromkeys(("first_seed", "shard_index", "seed", "max_retries", "backoff_base", "backoff_max",
                     "tolerance", "fqe_refits", "eval_samples", "number_weight", "prompt_weight",
                     "coverage_episodes"), NON_NEGATIVE),
    "prompt_until": UNIT, "coverage_steps": UNIT, "turn_balance": UNIT,
    "temperature": NON_NEGATIVE, "top_p": TOP_P,
    "kind": (lambda x: x in AGENT_KINDS, f"one of {', '.join(AGENT_KINDS)}"),
    # several hosts (emodistill_jax.lm.distributed)
    "coordinator_address": (host_port, "host:port, e.g. host0:1234"),
    "num_processes": (lambda x: _int(x) and x >= 1, "an integer >= 1"),
    **dict.fromkeys(("process_id", "local_device_ids"), (lambda x: _int(x) and x >= 0, "an integer >= 0")),
    "cluster_detection": (lambda x: isinstance(x, str) and bool(x), "auto or a JAX cluster detection method"),
}


def _leaves(config: Mapping, prefix: str = "") -> Iterator[tuple[str, str, Any]]:
  for key in config.keys():
    value = config[key]
    path = f"{prefix}{key}"
    if isinstance(value, Mapping) or hasattr(value, "keys") and callable(value.keys):
      yield from _leaves(value, path + ".")
    else:
      yield path, key, value


def _fail(path: str, value: Any, allowed: str) -> None:
  raise ConfigError(f"--config.{path}={value!r}: must be {allowed}")


def check_config(config: Mapping) -> None:
  """Raises ConfigError for the first field (in key order) whose value breaks its rule."""
  for path, key, value in _leaves(config):
    values = value if isinstance(value, (tuple, list)) else (value,)
    for v in values:
      if v is None:
        continue
      if isinstance(v, float) and not math.isfinite(v):
        _fail(path, value, "a finite number")
      rule = RULES.get(key)
      if rule is not None and not rule[0](v):
        _fail(path, value, rule[1])
  shards, index = config.get("num_shards"), config.get("shard_index")
  if _num(shards) and _num(index) and index >= shards:
    _fail("shard_index", index, f"below num_shards ({shards})")
  hosts = config.get("distributed") or {}
  n, rank = hosts.get("num_processes"), hosts.get("process_id")
  if _int(n) and _int(rank) and rank >= n:
    _fail("distributed.process_id", rank, f"below distributed.num_processes ({n})")
