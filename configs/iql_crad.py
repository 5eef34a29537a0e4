"""IQL emotion selector for the crad domain (any domain with --config.domain=...).

    python -m launchers.train --config=configs/iql_crad.py:sandbox --workdir=runs/iql_crad
    python -m launchers.train --config=configs/iql_crad.py:paper --config.data.sweep=runs/sweep_crad_api \
        --workdir=runs/iql_crad_paper

`sandbox` makes its own sandbox sweep (80 train scenarios x 60 seeds) and judge run in the workdir,
then trains 20k updates: a few minutes on 2 CPU cores. `paper` trains the published setting (50k
updates, batch 256, hidden 256, expectile 0.7, beta 3, gamma 0.99, Adam 3e-4, R(tau) at the terminal
transition, AWR on the raw Q - V, sampling at temperature 1) on a judged sweep you made
(`launchers.sweep` + `launchers.judge`). `smoke` runs in seconds.

Deliberate differences of `sandbox` (and the default everywhere but `paper`), measured on the sandbox
(docs/formulas.md): the AWR exponent acts on batch-standardized advantages (`iql.advantage_norm`), since
with rewards divided by max |r| the raw Q - V has a std of ~0.1 and exp(3 (Q - V)) keeps the policy near
uniform; and the outcome reward is placed densely (`iql_placement="dense"`: each turn's sign-aware
concession terms at that turn, the +-2 agreement term at the end, the same R(tau) in sum), which assigns
credit to the turn whose emotion moved the counterparty. Produces selector/ (orbax +
selector.json), train/metrics.jsonl and iql_report.json (emotion preferences per phase; against a
sandbox sweep also their Spearman correlation with the sandbox's hidden efficacy table).
"""

from ml_collections import config_dict

from configs.common import distributed
from emodistill_jax.iql import default_config, ope


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  c = config_dict.ConfigDict()
  c.stage = "iql"
  c.domain = "crad"
  c.progress = True
  c.data = config_dict.ConfigDict()
  c.data.sweep = config_dict.placeholder(str)  # a judged sweep's folder; None: make a sandbox one
  c.data.judge = config_dict.placeholder(str)  # judge outputs, if not in the sweep folder
  c.data.sandbox_scenarios = 80
  c.data.sandbox_seeds = 60  # 4,800 episodes: the selector's held-out gain grows with data
  c.data.sandbox_first_seed = 0
  c.iql = default_config()
  c.iql_reward = "outcome"  # outcome | episode_judge | turn_judge (Table 2 ablation)
  c.iql_placement = "terminal"  # terminal (paper) | dense
  c.grid = config_dict.ConfigDict()
  c.grid.expectile = (0.7, 0.8, 0.9)
  c.grid.beta = (1.0, 3.0, 10.0)
  c.grid.gamma = (0.95, 0.99)
  c.grid.seeds = (0,)
  c.grid.temperatures = (0.0, 0.5, 1.0)  # selection temperatures the OPE chooses among (0 = argmax)
  c.grid.heldout_fraction = 0.2  # whole scenarios held out for the OPE that chooses the member
  c.selection_temperature = 1.0  # a single IQL run's sampling temperature at evaluation (0 = argmax)
  c.ope_behaviour = config_dict.placeholder(float)  # behaviour probability for sweeps that did not log it
  c.ope = ope.default_config()
  c.distributed = distributed()  # several hosts: docs/multihost.md
  if arg != "paper":  # see the docstring: the sandbox's choices where the paper's settings do not separate emotions
    c.iql_placement = "dense"
  if arg in (None, "", "sandbox"):
    c.iql.steps = 20_000
    return c
  if arg == "paper":  # the paper's reference: raw Q - V in the AWR exponent, terminal reward, sampling at 1
    c.iql.advantage_norm = "none"
    return c
  if arg == "smoke":
    c.progress = False
    c.data.sandbox_scenarios = 8
    c.data.sandbox_seeds = 3
    c.iql.steps = 200
    c.iql.updates_per_call = 100
    c.iql.hidden_dim = 32
    c.iql.head_dim = 16
    return c
  raise ValueError(f"unknown preset {arg!r} for configs/iql_crad.py; expected sandbox, paper or smoke")
