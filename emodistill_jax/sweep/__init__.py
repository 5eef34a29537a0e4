"""Sweeps and judge runs: resumable JSONL storage, manifests, shards."""

from emodistill_jax.sweep.judging import run_judge
from emodistill_jax.sweep.runner import load_episodes, merge_shards, plan, run_sweep
from emodistill_jax.storage import JsonlWriter, OrderedCommitter, StorageError, read_records
