"""Host memory allocation for long-running JAX processes on CPU.

XLA:CPU takes each execution's buffers from malloc. glibc serves a large request with a fresh mmap and unmaps
it on free, so every training step faults in and zeroes its buffers again: 12% of the CPU time of the LoRA step
in `launchers.benchmark` `:speed` went to the kernel (4.8 s of system time in 4 steps). `retain_freed_memory`
tells glibc to serve large requests from its heap and to keep freed memory for reuse (as PyTorch's and JAX's
device allocators do on accelerators): system time fell to 0.15 s and the step from 5.1 to 4.7 s. The price is
that the process keeps its peak resident size until it exits. The launchers call it once at start-up.
"""

from __future__ import annotations

import ctypes
import sys

# mallopt parameters (glibc malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8


def retain_freed_memory() -> bool:
  """One malloc arena, no mmap'd chunks, no trimming of the heap; False where malloc is not glibc's (no
  change then)."""
  if not sys.platform.startswith("linux"):
    return False
  try:
    mallopt = ctypes.CDLL(None).mallopt
  except (OSError, AttributeError):
    return False
  mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
  settings = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1))
  return all(mallopt(param, value) == 1 for param, value in settings)
