"""Offline transitions (s, e, r, s', done), one per focal turn, from a judged sweep.

Reward placement (config `placement`):
* "terminal" (paper): the whole episode reward on the last focal turn, 0 before;
* "dense": per-step terms plus the terminal part on the last turn.
Reward variants (config `reward`, the paper's Table 2 ablation):
* "outcome": R(tau). Dense: w(t)(concession_t - retreat_t) per turn, +-2 at the end.
* "episode_judge": the episode-judge advantage. Dense: spread evenly over the episode's turns.
* "turn_judge": the turn-judge advantage A_t. Terminal: their sum on the last turn.
Rewards are divided by the dataset's max |r|; the scale is kept with the data and the checkpoint.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from emodistill_jax.emotions import EMOTIONS, NUM_EMOTIONS
from emodistill_jax.errors import InputFileError
from emodistill_jax.iql.state import STATE_DIM, STATE_SPEC_VERSION, episode_states
from emodistill_jax.signals import AGREEMENT_BONUS, turn_terms

PLACEMENTS = ("terminal", "dense")
REWARDS = ("outcome", "episode_judge", "turn_judge")
FIELDS = ("states", "actions", "rewards", "next_states", "dones")


class TransitionError(InputFileError):
  pass


@dataclasses.dataclass
class TransitionSet:
  states: np.ndarray  # [N, 10] float32
  actions: np.ndarray  # [N] int32
  rewards: np.ndarray  # [N] float32, already scaled
  next_states: np.ndarray  # [N, 10]
  dones: np.ndarray  # [N] float32
  episode_ids: list[str]
  reward_scale: float
  meta: dict
  # [N] probability of the logged emotion under the sweep's (behaviour) policy, for off-policy evaluation:
  # from the episode records, else `default_behaviour`, else NaN
  behaviour: np.ndarray | None = None

  def arrays(self) -> dict[str, np.ndarray]:
    return {k: getattr(self, k) for k in FIELDS}


def _episode_rewards(episode, variant: str, placement: str, turn_adv: Sequence[float] | None,
                     episode_adv: float | None) -> np.ndarray:
  T = sum(m.speaker == "focal" for m in episode.messages)
  r = np.zeros(T)
  if variant == "outcome":
    terms = turn_terms(episode.x0, episode.xstar, *episode.turn_offers())
    bonus = AGREEMENT_BONUS if episode.success else -AGREEMENT_BONUS
    if placement == "dense":
      r[:] = terms
      r[-1] += bonus
    else:
      r[-1] = terms.sum() + bonus
  elif variant == "episode_judge":
    if placement == "dense":
      r[:] = episode_adv / T
    else:
      r[-1] = episode_adv
  else:  # turn_judge
    a = np.asarray(turn_adv, dtype=np.float64)
    if placement == "dense":
      r[:] = a
    else:
      r[-1] = a.sum()
  return r


def build_transitions(episodes: Sequence, reward: str = "outcome", placement: str = "terminal",
                      turn_advantages: Mapping[str, Sequence[float]] | None = None,
                      episode_advantages: Mapping[str, float] | None = None,
                      default_behaviour: float | None = None) -> TransitionSet:
  """turn_advantages: episode id -> A_t per focal turn; episode_advantages: episode id -> advantage.
  Episodes the judge variants have no advantage for (e.g. scenarios with too few scores) are skipped
  and counted in `meta`. Behaviour probabilities come from each episode's `meta["behaviour_probs"]`
  (sweeps record them), else `default_behaviour` (e.g. 1/28 for a uniform sweep made before they were
  recorded)."""
  if reward not in REWARDS:
    raise TransitionError(f"reward variant {reward!r}; expected one of {', '.join(REWARDS)}")
  if placement not in PLACEMENTS:
    raise TransitionError(f"reward placement {placement!r}; expected one of {', '.join(PLACEMENTS)}")
  parts = {k: [] for k in FIELDS}
  behaviour = []
  ids, skipped = [], 0
  for e in episodes:
    focal = [m for m in e.messages if m.speaker == "focal"]
    if not focal:
      raise TransitionError(f"episode {e.episode_id}: field 'messages' has no focal turn")
    turn_adv = episode_adv = None
    if reward == "turn_judge":
      turn_adv = (turn_advantages or {}).get(e.episode_id)
      if turn_adv is None:
        skipped += 1
        continue
      if len(turn_adv) != len(focal):
        raise TransitionError(f"episode {e.episode_id}: {len(turn_adv)} turn advantages for {len(focal)} focal turns")
    if reward == "episode_judge":
      episode_adv = (episode_advantages or {}).get(e.episode_id)
      if episode_adv is None:
        skipped += 1
        continue
    for i, m in enumerate(focal):
      if m.emotion is None:
        raise TransitionError(f"episode {e.episode_id}: focal turn {i + 1} field 'emotion' is empty "
                              "(an emotion-free sweep has no actions to learn)")
      if m.emotion not in EMOTIONS:
        raise TransitionError(f"episode {e.episode_id}: focal turn {i + 1} field 'emotion' is {m.emotion!r}")
    states = episode_states(e)
    T = len(focal)
    parts["states"].append(states[:T])
    parts["next_states"].append(states[1:T + 1])
    parts["actions"].append(np.array([EMOTIONS.index(m.emotion) for m in focal], np.int32))
    parts["rewards"].append(_episode_rewards(e, reward, placement, turn_adv, episode_adv))
    done = np.zeros(T, np.float32)
    done[-1] = 1.0
    parts["dones"].append(done)
    logged = e.meta.get("behaviour_probs")
    if logged is None or len(logged) != T or any(b is None or not 0 < b <= 1 for b in logged):
      logged = [np.nan if default_behaviour is None else default_behaviour] * T
    behaviour.append(np.asarray(logged, np.float32))
    ids += [e.episode_id] * T
  if not ids:
    raise TransitionError(f"no transitions: {len(episodes)} episode(s), {skipped} without {reward} advantages")
  data = {k: np.concatenate(v) for k, v in parts.items()}
  for i, r in enumerate(data["rewards"]):
    if not np.isfinite(r):
      raise TransitionError(f"episode {ids[i]}: field 'rewards' is {r} at transition {i}")
  scale = float(np.abs(data["rewards"]).max()) or 1.0
  data["rewards"] = (data["rewards"] / scale).astype(np.float32)
  ts = TransitionSet(**{k: data[k].astype(np.float32) if k != "actions" else data[k] for k in FIELDS},
                     episode_ids=ids, reward_scale=scale, behaviour=np.concatenate(behaviour),
                     meta={"reward": reward, "placement": placement, "episodes": len(episodes) - skipped,
                           "skipped_episodes": skipped, "state_spec_version": STATE_SPEC_VERSION})
  validate(ts.arrays(), ids)
  return ts


def validate(transitions: Mapping[str, np.ndarray], episode_ids: Sequence[str] | None = None) -> dict:
  """Checks shapes, dtypes, ranges and finiteness; errors name the field and the transition (and the
  episode when ids are known). Returns float32/int32 copies."""
  missing = [k for k in FIELDS if k not in transitions]
  if missing:
    raise TransitionError(f"transitions: missing field(s) {', '.join(missing)}")
  n = len(transitions["actions"])
  if n == 0:
    raise TransitionError("transitions: empty (no transitions to learn from)")
  where = lambda i: f"transition {i}" + (f" (episode {episode_ids[i]})" if episode_ids is not None else "")
  out = {}
  for k in FIELDS:
    a = np.asarray(transitions[k])
    want = (n, STATE_DIM) if k in ("states", "next_states") else (n,)
    if a.shape != want:
      raise TransitionError(f"transitions: field {k!r} has shape {a.shape}, expected {want}")
    if k != "actions":
      a = a.astype(np.float32)
      bad = np.argwhere(~np.isfinite(a))
      if bad.size:
        raise TransitionError(f"transitions: field {k!r} is {a[tuple(bad[0])]} at {where(int(bad[0][0]))}")
    out[k] = a
  actions = out["actions"]
  if not np.issubdtype(actions.dtype, np.integer):
    if not np.all(actions == np.round(actions)):
      raise TransitionError("transitions: field 'actions' must hold integers 0..27")
  actions = actions.astype(np.int64)
  bad = np.flatnonzero((actions < 0) | (actions >= NUM_EMOTIONS))
  if bad.size:
    raise TransitionError(f"transitions: field 'actions' is {actions[bad[0]]} at {where(int(bad[0]))}; "
                          f"expected 0..{NUM_EMOTIONS - 1}")
  out["actions"] = actions.astype(np.int32)
  dones = out["dones"]
  if not np.all((dones == 0) | (dones == 1)):
    i = int(np.flatnonzero((dones != 0) & (dones != 1))[0])
    raise TransitionError(f"transitions: field 'dones' is {dones[i]} at {where(i)}; expected 0 or 1")
  return out
