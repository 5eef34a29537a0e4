"""IQL networks (docs/formulas.md): trunks of Linear-ReLU-LayerNorm x2 (hidden 256); a dueling Q
(value and advantage heads of width 128, Q = V + A - mean A), optionally twin with the minimum taken;
a state value V; a categorical policy over the 28 emotions. Inference needs only `Policy`."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from emodistill_jax.emotions import NUM_EMOTIONS


class Trunk(nn.Module):
  hidden: int = 256

  @nn.compact
  def __call__(self, x):
    for _ in range(2):
      x = nn.LayerNorm()(nn.relu(nn.Dense(self.hidden)(x)))
    return x


def _head(x, width: int, out: int):
  return nn.Dense(out)(nn.relu(nn.Dense(width)(x)))


def dueling(value, advantage):
  """Q(s, a) = V(s) + A(s, a) - mean_a A(s, a); value [..., 1], advantage [..., A]."""
  return value + advantage - advantage.mean(axis=-1, keepdims=True)


class DuelingQ(nn.Module):
  hidden: int = 256
  head: int = 128
  num_actions: int = NUM_EMOTIONS

  @nn.compact
  def __call__(self, s):
    h = Trunk(self.hidden)(s)
    return dueling(_head(h, self.head, 1), _head(h, self.head, self.num_actions))


class Critic(nn.Module):
  """One or two dueling Q networks; returns [n_q, B, A]."""

  hidden: int = 256
  head: int = 128
  twin: bool = False

  @nn.compact
  def __call__(self, s):
    qs = [DuelingQ(self.hidden, self.head, name=f"q{i}")(s) for i in range(2 if self.twin else 1)]
    return jnp.stack(qs)


class Value(nn.Module):
  hidden: int = 256

  @nn.compact
  def __call__(self, s):
    return nn.Dense(1)(Trunk(self.hidden)(s))[..., 0]


class Policy(nn.Module):
  hidden: int = 256
  num_actions: int = NUM_EMOTIONS

  @nn.compact
  def __call__(self, s):
    return nn.Dense(self.num_actions)(Trunk(self.hidden)(s))  # logits
