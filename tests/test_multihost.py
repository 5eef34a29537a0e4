"""Several hosts on one machine: two processes x 2 CPU devices joined by `jax.distributed` (gloo) train the
tiny LoRA JPO step (batch over data x fsdp, base FSDP-sharded inside each process, dropout on, 2 micro-batches,
a checkpoint-and-resume in the middle) and the IQL learner (one configuration, resumed; and a 4-member grid
sharded over the 4 devices), and must log what one process with 4 simulated devices logs for the same global
batch and seed. Plus the settings' errors, which need no second process.

The workers are this file run as a module (`python -m tests.test_multihost OUT [ADDRESS NUM_PROCESSES ID]`).
"""

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from emodistill_jax.config_checks import check_config
from emodistill_jax.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMING = ("tokens_per_s", "step_seconds", "updates_per_s", "config_updates_per_s")


# ------------------------------------------------------------------------------------------------ worker


def lm_run(workdir: str) -> dict:
  """JPO on a tiny random Qwen2: 3 steps of 8 sequences as 2 micro-batches of 4, stopped after step 2 and
  resumed from that checkpoint."""
  import jax
  from emodistill_jax.distill import trainer
  from emodistill_jax.distill.data import TokenizedSet
  from emodistill_jax.lm import LMConfig, init_lora, init_model, sharding

  config = LMConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_layers=1, num_heads=4,
                    num_kv_heads=2, head_dim=8, tie_word_embeddings=True, dtype="float32", eos_token_id=2,
                    pad_token_id=0)
  model = init_model(config, jax.random.key(0), "float32")
  # weights of std ~0.2 (not the 0.02 init), so that the logits are far from flat; host arrays, as in every process
  model = dataclasses.replace(model, params=jax.tree.map(lambda x: np.asarray(x) * (10 if x.ndim == 2 else 1),
                                                         model.params))
  rng = np.random.default_rng(0)
  n, length = 16, 16
  ids = [rng.integers(3, 64, length).astype(np.int32) for _ in range(n)]
  masks = [np.r_[np.zeros(8), np.ones(8)].astype(np.int32) for _ in range(n)]
  data = TokenizedSet(ids, masks, rng.normal(size=n).astype(np.float32), np.full(n, length, np.int32),
                      np.full(n, length, np.int32), [f"ex{i}" for i in range(n)], np.zeros(n, bool), 0, length, {})
  tc = trainer.default_config()
  tc.update(algorithm="jpo", steps=3, batch_size=8, micro_batch_size=4, lr=1e-2, checkpoint_every=2)
  reference = init_lora(config, jax.random.key(1), 4, 8.0, 0.0, b_init_std=0.05)
  policy = reference.replace(dropout=0.05)  # as the JPO stage starts: the reference adapter, dropout on
  mesh = sharding.make_mesh(fsdp=2)  # [data 2, fsdp 2]; with 2 processes: data across them, fsdp within each
  trainer.train(model, policy, data, tc, workdir, reference=reference, mesh=mesh, stop_at=2)
  result = trainer.train(model, policy, data, tc, workdir, reference=reference, mesh=mesh)
  return {"rows": result.rows, "resumed_from": result.resumed_from,
          "lora": [np.asarray(x).tolist() for x in jax.tree.leaves(result.lora.params)]}


def iql_run(workdir: str) -> dict:
  """One configuration, 40 updates resumed after 20; and a grid of 4 members (one per device)."""
  import jax
  from emodistill_jax.iql import STATE_DIM, default_config, train_selector
  from emodistill_jax.iql.grid import train_grid

  rng = np.random.default_rng(0)
  n = 512
  s = rng.normal(size=(n, STATE_DIM)).astype(np.float32)
  data = dict(states=s, actions=rng.integers(0, 28, n).astype(np.int32), rewards=rng.normal(size=n).astype(np.float32),
              next_states=s[::-1].copy(), dones=(rng.random(n) < 0.2).astype(np.float32))
  c = default_config()
  c.update(steps=20, updates_per_call=10, batch_size=64, hidden_dim=32, head_dim=16)
  train_selector(data, c, workdir=workdir)
  c.steps = 40
  selector = train_selector(data, c, workdir=workdir)
  members = [dict(expectile=e, beta=3.0, gamma=0.99, seed=seed) for e in (0.7, 0.9) for seed in (0, 1)]
  _, grid_rows, states = train_grid(data, c, members)
  return {"policy": [np.asarray(x).tolist() for x in jax.tree.leaves(selector.params)],
          "stability": selector.meta["stability"], "grid_rows": grid_rows,
          "grid_policy": [np.asarray(x).tolist() for x in jax.tree.leaves(states.policy)]}


def worker(out: str, address: str | None = None, num_processes: int = 1, process_id: int = 0) -> None:
  import jax
  from emodistill_jax.lm import distributed
  t0 = time.perf_counter()
  settings = {"coordinator_address": address, "num_processes": num_processes, "process_id": process_id}
  joined = distributed.initialize(settings)
  assert distributed.initialize(settings) is joined  # a second call changes nothing
  workdir = os.path.dirname(out)  # one folder shared by the processes of a run, as a shared filesystem would be
  result = {"joined": joined, "process_count": jax.process_count(), "devices": jax.device_count(),
            "local_devices": jax.local_device_count()}
  for name, run in (("lm", lm_run), ("iql", iql_run)):
    t = time.perf_counter()
    result[name] = run(os.path.join(workdir, name))
    result[f"{name}_seconds"] = time.perf_counter() - t
  result["seconds"] = time.perf_counter() - t0
  with open(out, "w", encoding="utf-8") as f:
    json.dump(result, f)


# ------------------------------------------------------------------------------------------------- tests


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def launch(out, devices: int, *args) -> subprocess.Popen:
  env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COORDINATOR")
         and k not in ("JAX_NUM_PROCESSES", "JAX_PROCESS_ID")}
  # LLVM optimisation off halves XLA's compile time, most of this test's; every run has it, like for like
  env.update(JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices} "
             "--xla_backend_optimization_level=0")
  return subprocess.Popen([sys.executable, "-m", "tests.test_multihost", str(out), *map(str, args)], cwd=ROOT,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def strip(rows):
  return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """Two processes x 2 devices, and one process x 4 devices, all at once: their outputs."""
  port = free_port()
  one, two = tmp_path_factory.mktemp("one_process"), tmp_path_factory.mktemp("two_processes")
  procs = [launch(one / "out.json", 4)] + [launch(two / f"out{i}.json", 2, f"127.0.0.1:{port}", 2, i)
                                           for i in range(2)]
  logs = []
  try:
    for p in procs:
      logs.append(p.communicate(timeout=300)[0])
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  for p, log in zip(procs, logs):
    assert p.returncode == 0, log[-3000:]
  load = lambda path: json.loads(path.read_text())
  return {"one": load(one / "out.json"), "two": [load(two / f"out{i}.json") for i in range(2)], "dir": two}


def test_two_processes_join_one_job(runs):
  assert (runs["one"]["joined"], runs["one"]["process_count"], runs["one"]["devices"]) == (False, 1, 4)
  for r in runs["two"]:
    assert (r["joined"], r["process_count"], r["devices"], r["local_devices"]) == (True, 2, 4, 2)


def test_lora_trainer_on_two_processes_equals_one_process(runs):
  # rtol 1e-5, atol 1e-6: the sums over devices (gradients, loss means) run over gloo between the processes
  # instead of inside one, so float32 partial sums may be added in another order. Measured: metrics within
  # 1.2e-6 relative (kl at step 2), adapter weights within 6e-8 absolute; a real bug moves them by far more.
  one = runs["one"]["lm"]
  for r in runs["two"]:
    assert r["lm"]["resumed_from"] == one["resumed_from"] == 2
    assert [row["step"] for row in r["lm"]["rows"]] == [1, 2, 3]
    assert strip(r["lm"]["rows"])[0].keys() == strip(one["rows"])[0].keys()
    for a, b in zip(strip(r["lm"]["rows"]), strip(one["rows"])):
      for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6, err_msg=f"step {a['step']}: {key}")
    for a, b in zip(r["lm"]["lora"], one["lora"]):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert one["rows"][-1]["kl"] > 0  # the steps moved the policy


def test_iql_on_two_processes_equals_one_process(runs):
  # Exact: no number crosses a process. One configuration runs whole in every process, and a grid member
  # lives on one device, so each device runs the same program on the same values as in the one-process run.
  one = runs["one"]["iql"]
  for r in runs["two"]:
    assert r["iql"]["policy"] == one["policy"] and r["iql"]["grid_policy"] == one["grid_policy"]
    assert strip([r["iql"]["stability"]]) == strip([one["stability"]])
    assert strip(sum(r["iql"]["grid_rows"], [])) == strip(sum(one["grid_rows"], []))


def test_only_process_zero_writes_metrics_and_the_adapter(runs):
  lm, iql = runs["dir"] / "lm", runs["dir"] / "iql"
  assert [json.loads(line)["step"] for line in (lm / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
  assert [json.loads(line)["step"] for line in (iql / "metrics.jsonl").read_text().splitlines()] == [10, 20, 30, 40]
  assert (lm / "adapter" / "adapter_config.json").exists()
  assert sorted(os.listdir(lm / "checkpoints")) == ["2", "3"]


# ------------------------------------------------------------------------------------------ settings


@pytest.fixture
def clean_environment(monkeypatch):
  for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
    monkeypatch.delenv(name, raising=False)
  return monkeypatch


def test_single_process_default_does_nothing(clean_environment):
  from emodistill_jax.lm import distributed
  from configs.jpo_crad import get_config
  assert distributed.initialize(get_config("smoke").distributed) is False
  assert distributed.initialize({"num_processes": 1}) is False
  assert distributed.initialize(None) is False


@pytest.mark.parametrize("settings, env, message", [
    ({"num_processes": 2, "process_id": 2, "coordinator_address": "h:1"}, {},
     r"--config.distributed.process_id=2: must be in \[0, 2\), below the number of processes "
     r"\(--config.distributed.num_processes=2\)"),
    ({"num_processes": 2, "process_id": 0}, {},
     "--config.distributed.num_processes=2 needs --config.distributed.coordinator_address as well"),
    ({"coordinator_address": "h:1"}, {"JAX_PROCESS_ID": "1"},
     "--config.distributed.coordinator_address='h:1' is set but not the number of processes"),
    ({}, {"JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "5", "JAX_COORDINATOR_ADDRESS": "h:1"},
     r"JAX_PROCESS_ID=5: must be in \[0, 2\)"),
    ({}, {"JAX_NUM_PROCESSES": "two"}, "JAX_NUM_PROCESSES='two': must be an integer"),
])
def test_inconsistent_settings_name_the_key(clean_environment, settings, env, message):
  from emodistill_jax.lm import distributed
  for name, value in env.items():
    clean_environment.setenv(name, value)
  with pytest.raises(ConfigError, match=message):
    distributed.initialize(settings)


@pytest.mark.parametrize("field, value, message", [
    ("num_processes", 0, "--config.distributed.num_processes=0: must be an integer >= 1"),
    ("process_id", -1, "--config.distributed.process_id=-1: must be an integer >= 0"),
    ("coordinator_address", "host0", "--config.distributed.coordinator_address='host0': must be host:port"),
    ("local_device_ids", (0, -1), "--config.distributed.local_device_ids=(0, -1): must be an integer >= 0"),
])
def test_config_rules(field, value, message):
  from configs.iql_crad import get_config
  c = get_config("smoke")
  c.distributed[field] = value
  with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
    check_config(c)


def test_config_check_of_the_process_id():
  from configs.iql_crad import get_config
  c = get_config("smoke")
  c.distributed.update(num_processes=2, process_id=2, coordinator_address="host0:1234", local_device_ids=(0, 1))
  with pytest.raises(ConfigError, match=r"--config.distributed.process_id=2: must be below "
                                        r"distributed.num_processes \(2\)"):
    check_config(c)
  c.distributed.process_id = 1
  check_config(c)


if __name__ == "__main__":
  worker(sys.argv[1], *(sys.argv[2:3]), *map(int, sys.argv[3:]))
