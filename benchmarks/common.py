"""What more than one benchmark needs: the PyTorch reference, imported on demand."""

from __future__ import annotations

import os

from emodistill_jax.errors import UserError


def torch_reference(benchmark: str, threads: int, with_peft: bool = False):
  """Imports the PyTorch reference a benchmark races (not a runtime dependency of the package; a one-line
  error naming what to install when it is missing) and gives it `threads` threads (0: every CPU).
  Returns (torch, threads)."""
  try:
    if with_peft:
      import peft  # noqa: F401
    import torch
  except ImportError as e:
    what, extra = ("PyTorch + PEFT", " and peft") if with_peft else ("PyTorch", "")
    raise UserError(f"the :{benchmark} benchmark compares against {what} and {e.name} is not installed; install "
                    f"torch (a CPU build is enough){extra} first") from e
  threads = threads or os.cpu_count()
  torch.set_num_threads(threads)
  return torch, threads
