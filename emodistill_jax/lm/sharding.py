"""One `jax.sharding.Mesh` over all devices with axes ("data", "fsdp").

Batches are split over both axes (every device takes a slice of the batch). Base weights are either
replicated (fsdp = 1) or sharded FSDP-style: each parameter is split over the "fsdp" axis along its
largest dimension that divides evenly, and XLA gathers it where a matmul needs it. LoRA adapters are
small and stay replicated. `jax.jit` with these shardings replaces pmap (legacy).

On a 2-core CPU, XLA's simulated devices can deadlock when jitted steps with cross-device collectives
are dispatched back to back; callers that loop over sharded steps block on each result there
(`sync_every_step`).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from emodistill_jax.errors import ConfigError
from emodistill_jax.lm.config import LMConfig
from emodistill_jax.lm.weights import expected_shapes

BATCH_AXES = ("data", "fsdp")


def make_mesh(fsdp: int = 1, devices=None) -> Mesh:
  """data x fsdp mesh; data = number of devices / fsdp."""
  devices = list(jax.devices() if devices is None else devices)
  if fsdp < 1 or len(devices) % fsdp:
    raise ConfigError(f"mesh.fsdp={fsdp} must divide the device count {len(devices)}")
  return Mesh(np.array(devices).reshape(len(devices) // fsdp, fsdp), ("data", "fsdp"))


def param_spec(shape: tuple[int, ...], fsdp_size: int) -> P:
  """Shard the largest evenly divisible dimension over "fsdp"; replicate otherwise."""
  if fsdp_size > 1:
    for dim in sorted(range(len(shape)), key=lambda d: -shape[d]):
      if shape[dim] % fsdp_size == 0 and shape[dim] >= fsdp_size:
        return P(*[("fsdp" if d == dim else None) for d in range(len(shape))])
  return P()


def param_shardings(params, mesh: Mesh):
  fsdp = mesh.shape["fsdp"]
  return jax.tree.map(lambda x: NamedSharding(mesh, param_spec(tuple(x.shape), fsdp)), params)


def shard_params(params, mesh: Mesh):
  return jax.device_put(params, param_shardings(params, mesh))


def loading_sharding(mesh: Mesh, config: LMConfig) -> Callable[[tuple[str, ...]], NamedSharding]:
  """For `load_pretrained(..., sharding=...)`: each tensor goes straight to its shards."""
  shapes = expected_shapes(config)
  fsdp = mesh.shape["fsdp"]
  return lambda path: NamedSharding(mesh, param_spec(shapes[path], fsdp))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) dimension over all devices."""
  return NamedSharding(mesh, P(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def sync_every_step() -> bool:
  """True where back-to-back collective steps can deadlock: several simulated devices on CPU."""
  return jax.default_backend() == "cpu" and jax.device_count() > 1
