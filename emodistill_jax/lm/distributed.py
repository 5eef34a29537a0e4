"""One training job over several processes (hosts): `jax.distributed` set up from a config or the environment,
and the moves between host values and global arrays that the trainers share.

JAX runs one process per host, each running the same program: after `initialize`, `jax.devices()` lists every
process's devices (a `Mesh` over them spans the hosts) and each process addresses only its own. `initialize`
must run before anything touches a device (`jax.devices()`, `device_put`, any computation). Each setting is
taken from the config field, else from the environment (JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES,
JAX_PROCESS_ID; JAX reads JAX_LOCAL_DEVICE_IDS itself); with `cluster_detection` set, JAX fills what is still
unset from the cluster it runs in ("auto": SLURM, Open MPI, Kubernetes, Cloud TPU; or a method name such as
"mpi4py"). Nothing set, or one process: no call at all, the single-process default.

On CPU the processes exchange data through gloo (JAX's default `jax_cpu_collectives_implementation`; "mpi" is
the alternative); it is set to gloo when something turned it off.

Every process computes the same host values (data, initial states) from the same seeds and files; `to_global`
then copies into each device only the slices it holds, so a process feeds exactly its share of a batch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from emodistill_jax.errors import ConfigError

FIELDS = ("coordinator_address", "num_processes", "process_id", "local_device_ids", "cluster_detection")
ENVIRONMENT = {"coordinator_address": "JAX_COORDINATOR_ADDRESS", "num_processes": "JAX_NUM_PROCESSES",
               "process_id": "JAX_PROCESS_ID"}


def _setting(config: Mapping, key: str) -> tuple[object, str]:
  """(value, where it came from for messages): the config field, else its environment variable, else None."""
  value = config.get(key)
  if value is not None:
    return value, f"--config.distributed.{key}={value!r}"
  env = ENVIRONMENT.get(key)
  if env and os.environ.get(env):
    value = os.environ[env]
    if key != "coordinator_address":
      try:
        value = int(value)
      except ValueError:
        raise ConfigError(f"{env}={value!r}: must be an integer (the {key.replace('_', ' ')})") from None
    return value, f"{env}={value!r}"
  return None, f"--config.distributed.{key}"


def initialize(config: Mapping | None = None) -> bool:
  """Joins this process to a multi-process JAX job when `config` (a `distributed` sub-config, see
  configs/common.py) or the environment asks for one, and returns True; otherwise does nothing and returns
  False. Calling it again changes nothing."""
  if jax.distributed.is_initialized():
    return True
  config = {k: (config or {}).get(k) for k in FIELDS}
  (address, where_address), (n, where_n), (pid, where_pid) = (
      _setting(config, k) for k in ("coordinator_address", "num_processes", "process_id"))
  if n is not None and n < 1:
    raise ConfigError(f"{where_n}: must be >= 1")
  if pid is not None and n is not None and not 0 <= pid < n:
    raise ConfigError(f"{where_pid}: must be in [0, {n}), below the number of processes ({where_n})")
  detection = config["cluster_detection"]
  if detection is None:
    if n is None and (address is not None or pid is not None):
      raise ConfigError(f"{where_address if address is not None else where_pid} is set but not the number of "
                        f"processes: set {where_n}=N (or JAX_NUM_PROCESSES)")
    if n is None or n == 1:
      return False
    if address is None or pid is None:
      raise ConfigError(f"{where_n} needs {where_address if address is None else where_pid} as well (or its "
                        "environment variable; or --config.distributed.cluster_detection=auto to read the "
                        "settings from SLURM / Open MPI)")
  if jax.config.jax_cpu_collectives_implementation is None:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  ids = config["local_device_ids"]
  method = None if detection in (None, "auto") else detection
  try:
    jax.distributed.initialize(address, n, pid, None if ids is None else list(ids),
                               cluster_detection_method=method)
  except ValueError as e:  # JAX's own: a value it could not find (no cluster detected) or does not accept
    raise ConfigError(f"jax.distributed could not start ({e}); set --config.distributed.coordinator_address, "
                      "num_processes and process_id (or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, "
                      "JAX_PROCESS_ID)") from None
  return True


def is_primary() -> bool:
  """True on process 0, the one that writes metrics, reports and exports (checkpoints: every process)."""
  return jax.process_index() == 0


def barrier(name: str) -> None:
  """Every process waits here for the others (nothing to wait for with one process)."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


def process_mesh() -> Mesh:
  """One device of each process, for small programs every process runs whole (replicated): their arrays are
  global, so orbax saves them once, yet no process computes the same thing twice."""
  return Mesh(np.array([jax.local_devices(process_index=p)[0] for p in range(jax.process_count())]),
              ("process",))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def to_global(tree, sharding):
  """Host values (the same in every process) as global arrays laid out by `sharding` (one for every leaf):
  each process copies in only the slices its own devices hold. The buffers are new, never the caller's, so a
  jitted step may donate them."""

  def one(x):
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: np.array(host[index]))

  return jax.tree.map(one, tree)


def _identity(tree):
  return tree


def to_host(tree):
  """Numpy copies of the arrays of `tree`. Arrays split over several processes (all on one mesh) are first
  gathered in one program, so every process must call this, in the same order."""
  split = [x for x in jax.tree.leaves(tree)
           if isinstance(x, jax.Array) and not (x.is_fully_addressable or x.is_fully_replicated)]
  if split:
    tree = jax.jit(_identity, out_shardings=replicated(split[0].sharding.mesh))(tree)
  return jax.tree.map(np.asarray, tree)


__all__ = ["barrier", "initialize", "is_primary", "process_mesh", "replicated", "to_global", "to_host"]
