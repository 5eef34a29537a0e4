"""Evaluation methods: an emotion selector x a generator, with or without the emotion block.

The paper's methods (Tables 1, 3 and 14) as combinations:

| method | selector | generator | emotion block |
|---|---|---|---|
| Vanilla LLM | neutral (e = neutral, Eq. 12) | teacher / API model | yes, neutral's |
| Vanilla SLM | neutral (e = neutral) | student, no adapter | yes, neutral's |
| Random | uniform random | teacher / API model | yes |
| IQL | IQL | teacher / API model | yes |
| IQL+SFT | IQL | student + SFT adapter | yes |
| IQL+JPO | IQL | student + JPO adapter trained against the base model | yes |
| IQL+SFT+JPO | IQL | student + JPO adapter trained against the SFT adapter | yes |
| A-LoL | IQL | student + A-LoL adapter | yes |
| SFT (emotion-free) | none | student + emotion-free SFT adapter | no |
| SFT+JPO (emotion-free) | none | student + emotion-free JPO adapter trained against the emotion-free SFT adapter | no |
| JPO (emotion-free, no SFT) | none | student + emotion-free JPO adapter trained against the base model | no |

plus `Fixed:<emotion>` (one emotion every turn, the per-emotion study), `Neutral`, and, against the sandbox
counterparty only, `Oracle`: the teacher playing the hidden efficacy table's best emotion of each phase
(`sandbox.best_schedule`), the headroom a selector can reach over Random.
"""

from __future__ import annotations

import dataclasses

from emodistill_jax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Method:
  name: str
  selector: str  # "none" | "neutral" | "random" | "iql" | "oracle" | "fixed:<label>"
  generator: str  # "teacher" (sandbox teacher or API model) | "student"
  adapter: str | None = None  # an adapter name in the run's adapter table ("sft", "jpo", ...)
  emotion_free: bool = False


PAPER_METHODS = (
    Method("Vanilla LLM", "neutral", "teacher"),
    Method("Vanilla SLM", "neutral", "student"),
    Method("Random", "random", "teacher"),
    Method("IQL", "iql", "teacher"),
    Method("IQL+SFT", "iql", "student", "sft"),
    Method("IQL+JPO", "iql", "student", "jpo_base"),
    Method("IQL+SFT+JPO", "iql", "student", "jpo"),
    Method("A-LoL", "iql", "student", "alol"),
    Method("SFT (emotion-free)", "none", "student", "sft_free", emotion_free=True),
    Method("SFT+JPO (emotion-free)", "none", "student", "jpo_free", emotion_free=True),
    Method("JPO (emotion-free, no SFT)", "none", "student", "jpo_free_base", emotion_free=True),
)


ORACLE = Method("Oracle", "oracle", "teacher")


def fixed(label: str) -> Method:
  return Method(f"Fixed:{label}", f"fixed:{label}", "teacher")


def by_name(names) -> list[Method]:
  table = {m.name: m for m in (*PAPER_METHODS, ORACLE)}
  out = []
  for n in names:
    if n.startswith("Fixed:"):
      out.append(fixed(n.split(":", 1)[1]))
    elif n in table:
      out.append(table[n])
    else:
      raise ConfigError(f"unknown method {n!r}; expected one of {', '.join(table)} or Fixed:<emotion>")
  return out


def slug(name: str) -> str:
  """A folder name for a method."""
  return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")
