"""Pieces shared by config files."""

from ml_collections import config_dict


def distributed() -> config_dict.ConfigDict:
  """How many processes (hosts) one training job spans (`emodistill_jax.lm.distributed`, docs/multihost.md).

  Unset (the default): one process, unless JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID are
  set in the environment.
  """
  c = config_dict.ConfigDict()
  c.coordinator_address = config_dict.placeholder(str)  # "host:port" of process 0, reachable from every host
  c.num_processes = config_dict.placeholder(int)  # hosts (processes) in the job
  c.process_id = config_dict.placeholder(int)  # this process: 0 .. num_processes - 1 (0 writes the files)
  c.local_device_ids = config_dict.placeholder(tuple)  # the GPUs this process drives; None: all it sees
  c.cluster_detection = config_dict.placeholder(str)  # "auto": JAX reads unset values from SLURM / Open MPI / ...
  return c
