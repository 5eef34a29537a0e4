"""The adapter path's dropout (`lm.lora.dropout`): a counter-based hash in place of threefry draws, so its
statistics are checked against those of independent Bernoulli draws."""

import jax
import jax.numpy as jnp
import numpy as np

from emodistill_jax.lm.lora import dropout

N = 1_000_000


def _dropped(key, rate=0.05, shape=(1000, 1000)):
  out = np.asarray(dropout(jnp.ones(shape, jnp.float32), rate, key))
  assert set(np.unique(out)) <= {0.0, np.float32(1 / (1 - rate))}  # kept elements scaled by 1 / (1 - rate)
  return out.ravel() == 0


def _within(observed, p, n, sigmas=5.0):
  assert abs(observed - p) < sigmas * np.sqrt(p * (1 - p) / n), (observed, p)


def test_dropout_rate_and_independence():
  a, b = _dropped(jax.random.key(0)), _dropped(jax.random.key(1))
  _within(a.mean(), 0.05, N)
  _within(b.mean(), 0.05, N)
  _within((a & b).mean(), 0.05 ** 2, N)  # two keys (two projections): independent masks
  _within((a[1:] & a[:-1]).mean(), 0.05 ** 2, N - 1)  # neighbours in one mask
  _within((a[1000:] & a[:-1000]).mean(), 0.05 ** 2, N - 1000)  # the same column in neighbouring rows
  _within(_dropped(jax.random.key(2), rate=0.5).mean(), 0.5, N)
  assert not np.array_equal(a, b)
  np.testing.assert_array_equal(a, _dropped(jax.random.key(0)))  # a function of the key


def test_dropout_mask_follows_the_global_index():
  key = jax.random.key(3)
  whole = np.asarray(dropout(jnp.ones((8, 64, 32)), 0.3, key))
  np.testing.assert_array_equal(whole.reshape(16, 32, 32), np.asarray(dropout(jnp.ones((16, 32, 32)), 0.3, key)))
