"""SFT, JPO and A-LoL losses against straightforward NumPy loops, hand golden values, edge cases and gradients."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emodistill_jax.distill.losses import alol_loss, jpo_loss, sft_loss, token_logprobs

TOL = dict(rtol=1e-5, atol=1e-6)
B, T = 6, 12  # one batch shape for (almost) every call, so each jitted function compiles once

# jitted once per static ratio: eager dispatch compiles every primitive separately and is slower on a busy CPU
jpo = jax.jit(jpo_loss, static_argnames="ratio")
alol = jax.jit(alol_loss)
sft = jax.jit(sft_loss)


@functools.partial(jax.jit, static_argnames=("fn", "ratio"))
def grad_logp(logp, ref, mask, adv, fn="jpo", ratio="sequence", kl_coef=0.04):
  if fn == "jpo":
    return jax.grad(lambda x: jpo_loss(x, ref, mask, adv, kl_coef=kl_coef, ratio=ratio)[0])(logp)
  return jax.grad(lambda x: alol_loss(x, ref, mask, adv)[0])(logp)


def random_batch(seed, scale=0.3, empty_rows=(2,)):
  rng = np.random.default_rng(seed)
  logp = -rng.exponential(1.5, (B, T)).astype(np.float32)
  ref = (logp + rng.normal(0, scale, (B, T))).astype(np.float32)
  mask = np.zeros((B, T), np.float32)
  for b in range(B):
    start = rng.integers(1, T - 2)
    mask[b, start:rng.integers(start + 1, T + 1)] = 1
  for b in empty_rows:
    mask[b] = 0
  adv = rng.normal(0, 1.5, B).astype(np.float32)
  return logp, ref, mask, adv


# ---------------------------------------------------------------- NumPy references, one loop per sequence

def np_sft(logp, mask):
  num = den = 0.0
  for b in range(logp.shape[0]):
    for t in range(logp.shape[1]):
      if mask[b, t]:
        num -= float(logp[b, t])
        den += 1
  return num / den if den else 0.0


def np_jpo(logp, ref, mask, adv, eps=0.2, kl_coef=0.04, kappa=1.0, ratio="sequence"):
  pg, kl, rhos, outside, high, used = [], [], [], [], [], []
  for b in range(logp.shape[0]):
    idx = [t for t in range(logp.shape[1]) if mask[b, t]]
    if not idx:
      continue
    a = float(adv[b])
    at = a if a > 0 else kappa * a
    lr = [float(logp[b, t]) - float(ref[b, t]) for t in idx]
    if ratio in ("sequence", "product"):
      rho = math.exp(sum(lr) / len(lr) if ratio == "sequence" else sum(lr))
      pg.append(min(rho * at, min(max(rho, 1 - eps), 1 + eps) * at))
      rhos.append(rho)
      outside.append(float(rho < 1 - eps or rho > 1 + eps))
    else:
      terms = []
      for x in lr:
        r = math.exp(x)
        terms.append(min(r * at, min(max(r, 1 - eps), 1 + eps) * at))
      pg.append(sum(terms) / len(terms))
      rhos.append(sum(math.exp(x) for x in lr) / len(lr))
      outside.append(sum(float(math.exp(x) < 1 - eps or math.exp(x) > 1 + eps) for x in lr) / len(lr))
    k3 = [math.exp(-x) + x - 1 for x in lr]
    kl.append(sum(k3) / len(k3))
    high.append(float(kl[-1] > 0.5))
    used.append(a)
  n = len(used)
  if not n:
    return 0.0, {}
  pg_term = -sum(pg) / n
  kl_term = sum(kl) / n
  mean = sum(used) / n
  return pg_term + kl_coef * kl_term, {
      "pg": pg_term, "kl": kl_term, "rho_mean": sum(rhos) / n, "clip_frac": sum(outside) / n,
      "kl_gt_05": sum(high) / n, "adv_mean": mean,
      "adv_std": math.sqrt(sum((a - mean) ** 2 for a in used) / n), "adv_pos_frac": sum(a > 0 for a in used) / n,
      "tokens": float(mask.sum())}


def np_alol(logp, ref, mask, adv, lo=0.1, hi=1.9):
  total, n = 0.0, 0
  for b in range(logp.shape[0]):
    idx = [t for t in range(logp.shape[1]) if mask[b, t]]
    if not idx:
      continue
    n += 1
    w = min(max(math.exp(sum(float(logp[b, t]) - float(ref[b, t]) for t in idx) / len(idx)), lo), hi)
    nll = -sum(float(logp[b, t]) for t in idx) / len(idx)
    total += max(float(adv[b]), 0.0) * w * nll
  return total / n if n else 0.0


# ---------------------------------------------------------------- token_logprobs

def test_token_logprobs_alignment():
  rng = np.random.default_rng(0)
  logits = rng.normal(0, 2, (2, 5, 7)).astype(np.float32)
  ids = rng.integers(0, 7, (2, 5)).astype(np.int32)
  got = np.asarray(token_logprobs(jnp.asarray(logits), jnp.asarray(ids)))
  want = np.zeros((2, 5))
  for b in range(2):
    for t in range(1, 5):
      z = logits[b, t - 1].astype(np.float64)
      want[b, t] = z[ids[b, t]] - np.log(np.exp(z - z.max()).sum()) - z.max()
  np.testing.assert_allclose(got, want, **TOL)
  assert got.dtype == np.float32 and np.all(got[:, 0] == 0)
  bf16 = token_logprobs(jnp.asarray(logits, jnp.bfloat16), jnp.asarray(ids))
  assert bf16.dtype == jnp.float32  # computed in fp32 whatever the logits' dtype


# ---------------------------------------------------------------- SFT

def test_sft_matches_numpy_token_mean():
  logp, _, mask, _ = random_batch(1)
  loss, aux = sft(logp, mask)
  np.testing.assert_allclose(float(loss), np_sft(logp, mask), **TOL)
  assert float(aux["tokens"]) == mask.sum() and float(aux["nll"]) == float(loss)


def test_sft_empty_batch_is_zero_and_ignores_masked_inf():
  logp = np.full((B, T), -np.inf, np.float32)
  mask = np.zeros((B, T), np.float32)
  assert float(sft(logp, mask)[0]) == 0.0
  logp[0, 1] = -2.0
  mask[0, 1] = 1
  assert float(sft(logp, mask)[0]) == 2.0
  g = jax.jit(jax.grad(lambda x, m: sft_loss(x, m)[0]))(logp, mask)
  assert np.all(np.isfinite(g)) and float(g[0, 1]) == -1.0 and float(np.abs(g).sum()) == 1.0


# ---------------------------------------------------------------- JPO against NumPy

@pytest.mark.parametrize("ratio", ["sequence", "token", "product"])
@pytest.mark.parametrize("kappa", [0.0, 0.5, 1.0])
def test_jpo_matches_numpy(ratio, kappa):
  for seed in range(3):
    logp, ref, mask, adv = random_batch(10 + seed, scale=0.3 if seed else 0.02)
    loss, aux = jpo(logp, ref, mask, adv, kappa=kappa, ratio=ratio)
    want, want_aux = np_jpo(logp, ref, mask, adv, kappa=kappa, ratio=ratio)
    np.testing.assert_allclose(float(loss), want, **TOL)
    for k, v in want_aux.items():
      np.testing.assert_allclose(float(aux[k]), v, **TOL, err_msg=k)
    np.testing.assert_allclose(float(aux["loss"]), want, **TOL)


def test_jpo_product_ratio_is_the_sequence_probability_ratio():
  # the paper's rho: pi(y|x) / pi_ref(y|x); two response tokens with log-ratios 0.1 and 0.05 -> exp(0.15)
  logp = jnp.array([[-9.0, -1.0, -2.0, -9.0]])
  ref = jnp.array([[-5.0, -1.1, -2.05, -7.0]])
  mask = jnp.array([[0.0, 1.0, 1.0, 0.0]])
  _, aux = jpo(logp, ref, mask, jnp.array([1.0]), ratio="product")
  np.testing.assert_allclose(float(aux["rho_mean"]), math.exp(0.15), rtol=1e-6)
  _, aux = jpo(logp, ref, mask, jnp.array([1.0]), ratio="sequence")
  np.testing.assert_allclose(float(aux["rho_mean"]), math.exp(0.075), rtol=1e-6)


def test_jpo_hyperparameters_match_numpy():
  logp, ref, mask, adv = random_batch(20, scale=0.5)
  loss, aux = jpo(logp, ref, mask, adv, clip_eps=0.1, kl_coef=0.5, kappa=0.3)
  want, want_aux = np_jpo(logp, ref, mask, adv, eps=0.1, kl_coef=0.5, kappa=0.3)
  np.testing.assert_allclose(float(loss), want, **TOL)
  assert 0 < want_aux["clip_frac"] < 1  # the clip bites on some rows and not others
  np.testing.assert_allclose(float(aux["clip_frac"]), want_aux["clip_frac"], **TOL)


def test_jpo_kappa_zero_ignores_negative_advantages():
  logp, ref, mask, adv = random_batch(3)
  assert float(jpo(logp, ref, mask, adv, kappa=0.0)[0]) == pytest.approx(
      float(jpo(logp, ref, mask, np.maximum(adv, 0), kappa=0.0)[0]), abs=1e-7)


def test_jpo_eager_equals_jit_and_rejects_unknown_ratio():
  logp, ref, mask, adv = map(jnp.asarray, random_batch(4))
  np.testing.assert_allclose(float(jpo_loss(logp, ref, mask, adv)[0]), float(jpo(logp, ref, mask, adv)[0]),
                             rtol=1e-6)
  with pytest.raises(ValueError, match="ratio"):
    jpo_loss(logp, ref, mask, adv, ratio="sum")


# ---------------------------------------------------------------- golden values by hand

def one(logp, ref, mask, adv, **kw):
  return jpo(np.asarray([logp], np.float32), np.asarray([ref], np.float32), np.asarray([mask], np.float32),
             np.asarray([adv], np.float32), **kw)


def test_jpo_golden_inside_trust_region():
  # log-ratios 0.2 and -0.1 on the two response tokens (the third position is prompt)
  loss, aux = one([-1.0, -2.0, -5.0], [-1.2, -1.9, -0.1], [1, 1, 0], 2.0)
  rho = 1.0512710963760241  # exp((0.2 - 0.1) / 2) = exp(0.05)
  k3 = (0.018730753077981888 + 0.005170918075647624) / 2  # exp(-0.2) + 0.2 - 1, exp(0.1) - 0.1 - 1
  assert float(aux["rho_mean"]) == pytest.approx(rho, rel=1e-6)
  assert float(aux["pg"]) == pytest.approx(-2 * rho, rel=1e-6)  # 1 - eps < rho < 1 + eps: unclipped
  assert float(aux["kl"]) == pytest.approx(k3, rel=1e-5)
  assert float(loss) == pytest.approx(-2.1020641593289757, rel=1e-6)  # -2 rho + 0.04 k3
  assert float(aux["clip_frac"]) == 0 and float(aux["kl_gt_05"]) == 0 and float(aux["tokens"]) == 2


def test_jpo_golden_clipped_positive_and_pessimistic_negative():
  # log-ratios 0.6 and 0.4, mean 0.5: rho = exp(0.5) = 1.6487 > 1.2
  args = ([-1.0, -1.0, -3.0], [-1.6, -1.4, -3.0], [1, 1, 0])
  k3 = (0.14881163609402637 + 0.07032004603563946) / 2
  _, aux = one(*args, 1.0)  # A > 0: min(1.6487, 1.2) = 1.2
  assert float(aux["pg"]) == pytest.approx(-1.2, rel=1e-6)
  assert float(aux["clip_frac"]) == 1
  loss, aux = one(*args, -1.0, kappa=0.5)  # A~ = -0.5: min(-0.8244, -0.6) = -0.8244 (unclipped side)
  assert float(aux["pg"]) == pytest.approx(0.8243606353500641, rel=1e-6)
  assert float(loss) == pytest.approx(0.8287432689926574, rel=1e-5)  # + 0.04 k3
  assert float(aux["kl"]) == pytest.approx(k3, rel=1e-5)


# ---------------------------------------------------------------- all-masked rows and extremes

def test_all_masked_rows_contribute_nothing():
  clean = random_batch(5, empty_rows=(4, 5))
  dirty = [x.copy() for x in clean]
  dirty[0][4:], dirty[1][4:], dirty[3][4:] = -np.inf, 50.0, 7.0  # garbage under an all-zero mask
  for fn, ref_fn in ((jpo, lambda *a: np_jpo(*a)[0]), (alol, np_alol)):
    loss_clean, aux_clean = fn(*clean)
    loss, aux = fn(*dirty)
    assert np.isfinite(float(loss))
    np.testing.assert_allclose(float(loss), ref_fn(*clean), **TOL)
    for k in aux_clean:
      assert float(aux[k]) == float(aux_clean[k]), k
  # the batch means count rows with tokens only: 4 rows here
  assert float(jpo(*clean)[1]["adv_mean"]) == pytest.approx(float(clean[3][:4].mean()), rel=1e-6)
  for fn in ("jpo", "alol"):
    g = grad_logp(*dirty, fn=fn)
    assert np.all(np.isfinite(g)) and np.all(np.asarray(g)[4:] == 0)
  z = np.zeros((B, T), np.float32)
  for f in (jpo, alol):
    loss, aux = f(z, z, z, np.ones(B, np.float32))
    assert float(loss) == 0 and all(np.isfinite(float(v)) for v in aux.values())


@pytest.mark.parametrize("ratio", ["sequence", "token"])
@pytest.mark.parametrize("sign", [30.0, -30.0])
def test_extreme_log_ratios_stay_finite_and_clipped(ratio, sign):
  logp = np.full((B, T), -2.0, np.float32)
  ref = logp - sign  # log-ratio = sign on every token
  mask = np.ones((B, T), np.float32)
  adv = np.array([1.5, -1.5, 0.7, -0.2, 2.0, -3.0], np.float32)
  loss, aux = jpo(logp, ref, mask, adv, ratio=ratio, kappa=0.5)
  want, _ = np_jpo(logp, ref, mask, adv, kappa=0.5, ratio=ratio)
  assert np.isfinite(float(loss)) and all(np.isfinite(float(v)) for v in aux.values())
  np.testing.assert_allclose(float(loss), want, rtol=1e-5)
  assert float(aux["clip_frac"]) == 1 and float(aux["kl_gt_05"]) == 1
  # positive advantages never gain more than (1 + eps) A, nor less than (1 - eps) A
  pos = np.abs(adv)
  pg = float(jpo(logp, ref, mask, pos, ratio=ratio)[1]["pg"])
  assert pg == pytest.approx(-(1.2 if sign > 0 else float(np.exp(sign))) * pos.mean(), rel=1e-5)
  assert np.all(np.isfinite(grad_logp(logp, ref, mask, adv, ratio=ratio)))
  loss_a, aux_a = alol(logp, ref, mask, adv)
  assert np.isfinite(float(loss_a)) and float(aux_a["weight_mean"]) == pytest.approx(1.9 if sign > 0 else 0.1)


# ---------------------------------------------------------------- gradients

@pytest.mark.parametrize("ratio", ["sequence", "token"])
def test_jpo_gradient_masked_zero_and_sign(ratio):
  logp, ref, mask, adv = random_batch(6, scale=0.01)  # rho ~ 1: every sequence inside the trust region
  g = np.asarray(grad_logp(logp, ref, mask, adv, ratio=ratio, kl_coef=0.0))
  assert np.all(g[mask == 0] == 0)
  for b in range(B):
    on = mask[b] > 0
    if on.any():
      # descent (-g) raises log p of positive-advantage responses and lowers it for negative ones
      assert np.all(np.sign(-g[b, on]) == np.sign(adv[b])), b
  g_ref = jax.jit(jax.grad(lambda r: jpo_loss(logp, r, mask, adv)[0]))(ref)
  assert np.all(np.asarray(g_ref) == 0)  # ref_logp is a constant


def test_jpo_gradient_by_hand_and_vanishing_when_clipped():
  mask = np.zeros((1, 3), np.float32)
  mask[0, :2] = 1
  logp = np.array([[-1.0, -2.0, -5.0]], np.float32)
  # inside the trust region: d/dlogp_t of -(rho A) with rho = exp(mean lr) over n tokens is -A rho / n
  g = grad_logp(logp, np.array([[-1.2, -1.9, -0.1]], np.float32), mask, np.array([2.0], np.float32), kl_coef=0.0)
  rho = 1.0512710963760241
  np.testing.assert_allclose(np.asarray(g), [[-rho, -rho, 0.0]], rtol=1e-6)
  # A > 0 and rho = exp(0.5) > 1 + eps: no policy gradient; K3 alone pulls log p back toward the reference
  ref = np.array([[-1.5, -2.5, -5.0]], np.float32)
  assert np.all(np.asarray(grad_logp(logp, ref, mask, np.array([1.0], np.float32), kl_coef=0.0)) == 0)
  g = np.asarray(grad_logp(logp, ref, mask, np.array([1.0], np.float32), kl_coef=0.04))
  assert np.all(g[0, :2] > 0) and g[0, 2] == 0


# ---------------------------------------------------------------- A-LoL

@pytest.mark.parametrize("weight_clip", [(0.1, 1.9), (0.9, 1.1)])
def test_alol_matches_numpy(weight_clip):
  for seed in range(3):
    logp, ref, mask, adv = random_batch(30 + seed, scale=0.4)
    loss, aux = alol(logp, ref, mask, adv, weight_clip=weight_clip)
    np.testing.assert_allclose(float(loss), np_alol(logp, ref, mask, adv, *weight_clip), **TOL)
    assert float(aux["loss"]) == float(loss)


def test_alol_gradient_is_weighted_nll_on_positive_rows():
  logp, ref, mask, adv = random_batch(7, scale=0.4)
  g = np.asarray(grad_logp(logp, ref, mask, adv, fn="alol"))
  n_rows = (mask.sum(1) > 0).sum()
  assert (adv > 0).any() and (adv <= 0).any()
  for b in range(B):
    on = mask[b] > 0
    if adv[b] <= 0 or not on.any():
      assert np.all(g[b] == 0)
      continue
    w = min(max(math.exp((logp[b, on] - ref[b, on]).mean()), 0.1), 1.9)
    # the weight is a constant: d/dlogp_t = -A w / (tokens of the row * rows)
    np.testing.assert_allclose(g[b, on], -adv[b] * w / on.sum() / n_rows, rtol=1e-5)
    assert np.all(g[b, ~on] == 0)
