"""Message and episode records (schema-versioned; JSON round trip).

An episode line in `episodes*.jsonl` is `Episode.to_json()`; readers refuse other schema versions
with the file and line named, so a format change can never be misread silently.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from emodistill_jax.errors import InputFileError

SCHEMA_VERSION = 1
SPEAKERS = ("focal", "counterparty")
STATES = ("ongoing", "accepted", "breakdown")


@dataclasses.dataclass
class Message:
  speaker: str  # "focal" | "counterparty"
  text: str
  emotion: str | None = None  # the emotion the focal agent was told to use
  offer: float | None = None  # extracted, in the domain's unit
  state: str = "ongoing"  # mediator state after this message
  truncated: bool = False  # the focal decoder hit its token budget before the end of the turn

  def to_json(self) -> dict[str, Any]:
    d = dataclasses.asdict(self)
    if not self.truncated:  # written only when set, so most records (and older files) look the same
      del d["truncated"]
    return d

  @classmethod
  def from_json(cls, d: Mapping[str, Any], where: str = "<message>") -> "Message":
    if d.get("speaker") not in SPEAKERS:
      raise InputFileError(f"{where}: field 'speaker' is {d.get('speaker')!r}; expected focal or counterparty")
    if d.get("state", "ongoing") not in STATES:
      raise InputFileError(f"{where}: field 'state' is {d.get('state')!r}; expected one of {', '.join(STATES)}")
    if not isinstance(d.get("text"), str):
      raise InputFileError(f"{where}: field 'text' must be a string")
    offer = d.get("offer")
    if offer is not None and (isinstance(offer, bool) or not isinstance(offer, (int, float))):
      raise InputFileError(f"{where}: field 'offer' must be a number or null, got {offer!r}")
    return cls(speaker=d["speaker"], text=d["text"], emotion=d.get("emotion"),
               offer=None if offer is None else float(offer), state=d.get("state", "ongoing"),
               truncated=bool(d.get("truncated", False)))


@dataclasses.dataclass
class Episode:
  """One negotiation. `outcome` is the mediator's final state: "accepted" is the only success;
  "ongoing" means the message cap was reached (a failure)."""

  episode_id: str
  scenario_id: str
  domain: str
  seed: int
  x0: float
  xstar: float
  messages: list[Message]
  outcome: str
  final_value: float | None
  success: bool
  rounds: int  # messages exchanged
  savings: float  # 0 for failures
  models: dict[str, str] = dataclasses.field(default_factory=dict)  # role -> backend model
  meta: dict[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def emotions(self) -> list[str | None]:
    return [m.emotion for m in self.messages if m.speaker == "focal"]

  def offers(self, speaker: str) -> list[float | None]:
    return [m.offer for m in self.messages if m.speaker == speaker]

  def turn_offers(self) -> tuple[list[float | None], list[float | None]]:
    """Per focal turn t: the focal offer f_t and the counterparty offer c_t in the reply after it
    (None where there is no reply or no offer), the inputs of R(tau) and the IQL state."""
    focal, counter = [], []
    for i, m in enumerate(self.messages):
      if m.speaker == "focal":
        focal.append(m.offer)
        reply = self.messages[i + 1] if i + 1 < len(self.messages) else None
        counter.append(reply.offer if reply is not None and reply.speaker == "counterparty" else None)
    return focal, counter

  def to_json(self) -> dict[str, Any]:
    d = dataclasses.asdict(self)
    d["messages"] = [m.to_json() for m in self.messages]
    return {"schema_version": SCHEMA_VERSION, **d, "emotion_sequence": self.emotions}

  @classmethod
  def from_json(cls, d: Mapping[str, Any], where: str = "<episode>") -> "Episode":
    if d.get("schema_version") != SCHEMA_VERSION:
      raise InputFileError(f"{where}: field 'schema_version' is {d.get('schema_version')!r}; "
                       f"this version reads {SCHEMA_VERSION}")
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in d and f.name not in ("models", "meta")]
    if missing:
      raise InputFileError(f"{where}: missing field(s) {', '.join(missing)}")
    if d["outcome"] not in STATES:
      raise InputFileError(f"{where}: field 'outcome' is {d['outcome']!r}; expected one of {', '.join(STATES)}")
    messages = [Message.from_json(m, f"{where}: messages[{i}]") for i, m in enumerate(d["messages"])]
    return cls(
        episode_id=str(d["episode_id"]), scenario_id=str(d["scenario_id"]), domain=str(d["domain"]),
        seed=int(d["seed"]), x0=float(d["x0"]), xstar=float(d["xstar"]), messages=messages,
        outcome=d["outcome"], final_value=None if d["final_value"] is None else float(d["final_value"]),
        success=bool(d["success"]), rounds=int(d["rounds"]), savings=float(d["savings"]),
        models=dict(d.get("models", {})), meta=dict(d.get("meta", {})))
