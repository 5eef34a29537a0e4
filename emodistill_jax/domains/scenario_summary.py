"""A one-line-per-domain summary of a scenario set (counts per split, value ranges, imputations)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from emodistill_jax.domains.scenario import Scenario
from emodistill_jax.domains.spec import format_value


def summarize(scenarios: Sequence[Scenario]) -> dict:
  if not scenarios:
    raise ValueError("no scenarios to summarize")
  domain = scenarios[0].domain
  splits = Counter(s.split for s in scenarios)
  imputed = Counter(name for s in scenarios for name in s.imputed)
  directions = Counter("larger" if s.direction > 0 else "smaller" if s.direction < 0 else "none"
                       for s in scenarios)
  span = lambda xs: f"{format_value(domain, min(xs))} .. {format_value(domain, max(xs))}"
  return {
      "domain": domain, "count": len(scenarios), "train": splits["train"], "test": splits["test"],
      "source": scenarios[0].source.split(":")[0],
      "x0_range": span([s.x0 for s in scenarios]), "xstar_range": span([s.xstar for s in scenarios]),
      "direction": ", ".join(f"{k} x{v}" for k, v in sorted(directions.items())),
      "imputed": ", ".join(f"{k} x{v}" for k, v in sorted(imputed.items())),
  }
