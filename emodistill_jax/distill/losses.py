"""Losses of the expression stage (docs/formulas.md): SFT, JPO and A-LoL, as pure jit-able jnp functions.

Conventions shared by all three:
- `logp`, `ref_logp`, `mask` are [B, T] and aligned with `input_ids`: position t holds log p(input_ids[:, t] | <t)
  (`token_logprobs`), and `mask` is the data's loss mask (1 on response + end-of-turn tokens, 0 on prompt and
  padding), so no shifting happens in the losses.
- Rows without a response token (padding rows that keep a batch's shape static) contribute exactly 0, never
  NaN, and batch means over sequences count only rows with tokens.
- `ref_logp` is a constant: it is wrapped in `stop_gradient` inside.
- Every loss returns (loss, aux) with aux a dict of float32 scalars for the metrics log.

JPO as implemented (docs/formulas.md, docs/fidelity.md):
  rho_i = exp(mean_{t in response_i} (logp - ref_logp))            (ratio="sequence", the default)
  A~_i  = A_i if A_i > 0 else kappa A_i
  loss  = -mean_i min(rho_i A~_i, clip(rho_i, 1 - eps, 1 + eps) A~_i) + lambda mean_i K3_i
  K3_i  = mean_{t in response_i} (exp(D_t) - D_t - 1),  D_t = ref_logp_t - logp_t.
The paper's ratio is the sequence probability ratio pi(y|x) / pi_ref(y|x) = exp(SUM_t (logp - ref_logp)):
ratio="product", the `:paper` presets' setting. Our default, the sequence MEAN of the log-ratio (a
length-normalised ratio), is a deliberate deviation: with the product, a response of 100 tokens whose tokens
each move by 0.2% already leaves the 0.2 trust region, so long responses stop getting gradient at once.
With ratio="token" the clipped surrogate is taken per token with rho_t = exp(logp_t - ref_logp_t) and averaged
over the sequence's response tokens before the batch mean. Our choices where the paper is silent: the
per-sequence then per-batch mean (every sequence weighs the same whatever its length), and the diagnostics for
ratio="token" (rho_mean and clip_frac are per-sequence token means, then batch means).
No clamp is put on the log-ratio: the loss stays finite for |mean log-ratio| up to ~80 (fp32 exp), beyond which
it is inf and the trainer's NaN/inf check stops the run with the batch named.

A-LoL (Baheti et al., 2024, "Leftover Lunch: Advantage-based Offline RL for Language Models"):
  loss = mean_i max(A_i, 0) * w_i * NLL_i,  w_i = stop_gradient(clip(exp(mean_t (logp - ref_logp)), lo, hi)).
Deviations from the paper and its released code (`lolrl_qlora_llama_hh.py`, algorithm "a_lol"):
- the advantage is the given judge / outcome advantage (z-scored per scenario, section 8), not reward minus a
  value head of the reference policy trained on a validation set;
- the importance weight is exp of the MEAN token log-ratio (the released code uses exp of the SUM, i.e. the
  product of token ratios, which under- or overflows on long responses and then lives at the clip bounds);
- NLL_i is the token mean over the response (the released code sums tokens per response);
- the clip bounds default to the released code's [1 - 0.9, 1 + 0.9] = (0.1, 1.9).
As in the released code, negative-advantage rows stay in the batch with weight 0 (they count in the mean over
rows); `data.select(subset="positive")` removes them upstream instead when wanted.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from emodistill_jax.errors import ConfigError

Array = jax.Array

RATIOS = ("sequence", "token", "product")
KL_HIGH = 0.5  # a sequence whose mean K3 exceeds this counts in aux["kl_gt_05"]


def token_logprobs(logits: Array, input_ids: Array) -> Array:
  """log p(input_ids[:, t] | input_ids[:, :t]) from logits[:, t - 1]: [B, T, V], [B, T] -> [B, T] float32.

  Position 0 has no prediction and gets 0 (it is always prompt, so masked out anyway). Computed as the picked
  logit minus logsumexp over the vocabulary, which equals take_along_axis(log_softmax(logits)) without a second
  [B, T, V] array. Memory: the fp32 logits themselves are B * T * V * 4 bytes (8 x 1024 x 152k for Qwen2.5 is
  about 5 GB), plus as much again for their gradient in training; at 7B scale call this on chunks of T.
  """
  logits = logits[:, :-1].astype(jnp.promote_types(logits.dtype, jnp.float32))  # [B, T-1, V]
  targets = input_ids[:, 1:].astype(jnp.int32)  # [B, T-1]
  picked = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
  lp = picked - jax.nn.logsumexp(logits, axis=-1)
  return jnp.pad(lp, ((0, 0), (1, 0)))


def _rows(mask: Array) -> tuple[Array, Array, Array]:
  """(float mask, response tokens per row [B], 1.0 for rows with tokens [B])."""
  m = mask.astype(jnp.float32)
  n = m.sum(-1)
  return m, n, (n > 0).astype(jnp.float32)


def _row_mean(x: Array, m: Array, n: Array) -> Array:
  """Per-row mean of x over the mask; 0 for rows without tokens (values off the mask, even inf, are ignored)."""
  return jnp.where(m > 0, x * m, 0.0).sum(-1) / jnp.maximum(n, 1.0)


def _batch_mean(x: Array, has: Array) -> Array:
  """Mean of per-row values over rows with tokens; 0 when there is none."""
  return (x * has).sum() / jnp.maximum(has.sum(), 1.0)


def _log_ratio(logp: Array, ref_logp: Array, m: Array) -> Array:
  """logp - ref_logp on response tokens, exactly 0 elsewhere (so exp() of it never overflows there and
  gradients at masked positions are 0, not 0 * inf)."""
  return jnp.where(m > 0, logp - jax.lax.stop_gradient(ref_logp), 0.0)


def _k3(log_ratio: Array) -> Array:
  """Schulman's K3 estimator of KL(pi_theta || pi_ref) per token: exp(D) - D - 1 with D = -log_ratio."""
  d = -log_ratio
  return jnp.exp(d) - d - 1.0


def _advantage_stats(advantages: Array, has: Array) -> dict[str, Array]:
  a = advantages.astype(jnp.float32)
  mean = _batch_mean(a, has)
  std = jnp.sqrt(_batch_mean((a - mean) ** 2, has))
  return {"adv_mean": mean, "adv_std": std, "adv_pos_frac": _batch_mean((a > 0).astype(jnp.float32), has)}


def sft_loss(logp: Array, mask: Array) -> tuple[Array, dict[str, Array]]:
  """Token-mean NLL over all response tokens of the batch (sum of masked NLL / number of masked tokens).

  Token-mean, not sequence-mean: long responses weigh in proportion to their tokens, as in the usual
  cross-entropy SFT (HF Trainer with ignore_index labels); a batch without tokens gives 0.
  """
  m = mask.astype(jnp.float32)
  tokens = m.sum()
  nll = -jnp.where(m > 0, logp * m, 0.0).sum() / jnp.maximum(tokens, 1.0)
  return nll, {"loss": nll, "nll": nll, "tokens": tokens}


def jpo_loss(logp: Array, ref_logp: Array, mask: Array, advantages: Array, clip_eps: float = 0.2,
             kl_coef: float = 0.04, kappa: float = 1.0, ratio: str = "sequence") -> tuple[Array, dict[str, Array]]:
  """JPO: clipped surrogate with asymmetric advantages plus K3 to the reference (see the module docstring).

  logp, ref_logp, mask: [B, T]; advantages: [B]. aux: loss, pg (the policy term, -mean surrogate), kl (mean K3),
  rho_mean, clip_frac (sequences with rho outside [1 - eps, 1 + eps]), kl_gt_05 (sequences with mean K3 > 0.5),
  adv_mean, adv_std, adv_pos_frac (over rows with tokens, raw advantages), tokens.
  """
  if ratio not in RATIOS:
    raise ConfigError(f"ratio={ratio!r}; expected one of {', '.join(RATIOS)}")
  m, n, has = _rows(mask)
  lr = _log_ratio(logp, ref_logp, m)  # [B, T]
  a = advantages.astype(jnp.float32)
  a_tilde = jnp.where(a > 0, a, kappa * a)  # [B]
  lo, hi = 1.0 - clip_eps, 1.0 + clip_eps
  if ratio in ("sequence", "product"):
    log_rho = _row_mean(lr, m, n) if ratio == "sequence" else lr.sum(-1)  # masked positions hold exactly 0
    rho = jnp.exp(log_rho)  # [B]
    surrogate = jnp.minimum(rho * a_tilde, jnp.clip(rho, lo, hi) * a_tilde)
    rho_seq = rho
    outside = ((rho < lo) | (rho > hi)).astype(jnp.float32)
  else:
    rho_t = jnp.exp(lr)  # [B, T]
    at = a_tilde[:, None]
    surrogate = _row_mean(jnp.minimum(rho_t * at, jnp.clip(rho_t, lo, hi) * at), m, n)
    rho_seq = _row_mean(rho_t, m, n)
    outside = _row_mean(((rho_t < lo) | (rho_t > hi)).astype(jnp.float32), m, n)
  pg = -_batch_mean(surrogate, has)
  kl_seq = _row_mean(_k3(lr), m, n)  # [B]
  kl = _batch_mean(kl_seq, has)
  loss = pg + kl_coef * kl
  aux = {"loss": loss, "pg": pg, "kl": kl, "rho_mean": _batch_mean(rho_seq, has),
         "clip_frac": _batch_mean(outside, has),
         "kl_gt_05": _batch_mean((kl_seq > KL_HIGH).astype(jnp.float32), has),
         **_advantage_stats(a, has), "tokens": m.sum()}
  return loss, aux


def alol_loss(logp: Array, ref_logp: Array, mask: Array, advantages: Array,
              weight_clip: tuple[float, float] = (0.1, 1.9)) -> tuple[Array, dict[str, Array]]:
  """A-LoL: mean over rows of max(A, 0) * clipped sequence importance weight * token-mean NLL.

  The weight w = clip(exp(mean token log-ratio), *weight_clip) is a constant (stop_gradient), so the gradient
  is max(A, 0) w grad(NLL) as in the paper. aux: loss, pg (= loss), nll (unweighted token-mean NLL per row,
  batch mean), weight_mean (clipped), rho_mean (unclipped), clip_frac, kl and kl_gt_05 (K3 as in JPO,
  diagnostics only), adv_mean, adv_std, adv_pos_frac, tokens.
  """
  m, n, has = _rows(mask)
  lr = jax.lax.stop_gradient(_log_ratio(logp, ref_logp, m))
  rho = jnp.exp(_row_mean(lr, m, n))
  lo, hi = weight_clip
  w = jnp.clip(rho, lo, hi)
  a = advantages.astype(jnp.float32)
  nll_seq = -_row_mean(logp, m, n)  # [B]
  loss = _batch_mean(jnp.maximum(a, 0.0) * w * nll_seq, has)
  kl_seq = _row_mean(_k3(lr), m, n)
  aux = {"loss": loss, "pg": loss, "nll": _batch_mean(nll_seq, has), "weight_mean": _batch_mean(w, has),
         "rho_mean": _batch_mean(rho, has),
         "clip_frac": _batch_mean(((rho < lo) | (rho > hi)).astype(jnp.float32), has),
         "kl": _batch_mean(kl_seq, has), "kl_gt_05": _batch_mean((kl_seq > KL_HIGH).astype(jnp.float32), has),
         **_advantage_stats(a, has), "tokens": m.sum()}
  return loss, aux


__all__ = ["RATIOS", "alol_loss", "jpo_loss", "sft_loss", "token_logprobs"]
