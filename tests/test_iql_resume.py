"""IQL training killed at any moment (mid-chunk, mid-checkpoint) resumes to the uninterrupted result."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# trains a tiny IQL on fixed synthetic transitions in the workdir argv[1]; saves the final policy to policy.npz
SCRIPT = """
import sys, jax, numpy as np
from benchmarks.iql import synthetic_transitions
from emodistill_jax.iql.learner import default_config
from emodistill_jax.iql.train import train_selector
c = default_config()
c.hidden_dim, c.head_dim, c.batch_size, c.steps, c.updates_per_call = 16, 8, 32, 40, 2
sel = train_selector(synthetic_transitions(512), c, workdir=sys.argv[1])
leaves = jax.tree_util.tree_leaves_with_path(sel.params)
np.savez(sys.argv[1] + "/policy.npz", **{jax.tree_util.keystr(k): np.asarray(v) for k, v in leaves})
"""


def _train(workdir, kill_after_rows=None):
  proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(workdir)], cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
  if kill_after_rows is None:
    assert proc.wait(timeout=300) == 0, proc.stderr.read()[-2000:]
    return
  metrics = os.path.join(workdir, "metrics.jsonl")
  deadline = time.time() + 300
  while time.time() < deadline and proc.poll() is None:
    if os.path.exists(metrics) and open(metrics, "rb").read().count(b"\n") >= kill_after_rows:
      break
    time.sleep(0.005)
  proc.send_signal(signal.SIGKILL)
  proc.wait()


def _policy(workdir):
  with np.load(os.path.join(workdir, "policy.npz")) as f:
    return {k: f[k] for k in f.files}


def test_killed_training_resumes_to_the_uninterrupted_result(tmp_path):
  _train(tmp_path / "clean")
  want = _policy(tmp_path / "clean")
  steps = [json.loads(r)["step"] for r in (tmp_path / "clean" / "metrics.jsonl").read_text().splitlines()]
  assert steps == list(range(2, 41, 2))
  for moment, again in ((1, 7), (12, None)):  # kills land mid-chunk or mid-save: whatever the process was doing
    w = tmp_path / f"killed_{moment}"
    _train(w, kill_after_rows=moment)
    if again:
      _train(w, kill_after_rows=again)  # killed a second time after resuming
    _train(w)
    got = _policy(w)
    assert got.keys() == want.keys()
    for k in want:
      np.testing.assert_array_equal(got[k], want[k], err_msg=f"kill at {moment}: {k}")
    rows = [json.loads(r)["step"] for r in (w / "metrics.jsonl").read_text().splitlines()]
    assert rows == steps, moment  # no duplicated or missing metric rows
    kept = sorted(int(d) for d in os.listdir(w / "checkpoints") if d.isdigit())
    assert kept == [38, 40]  # the last two committed steps
