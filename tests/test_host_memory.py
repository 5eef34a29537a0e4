"""The launchers' malloc settings (`emodistill_jax.host_memory`): applied on glibc, a no-op elsewhere."""

import platform
import sys

import numpy as np

from emodistill_jax.host_memory import retain_freed_memory


def test_retain_freed_memory_applies_on_glibc():
  glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
  assert retain_freed_memory() is glibc
  big = np.ones(64 << 20, np.uint8)  # a large allocation is still served (from the heap now)
  assert int(big.sum()) == 64 << 20
