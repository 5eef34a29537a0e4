"""The paper's IQL grid (expectile {0.7, 0.8, 0.9} x beta {1, 3, 10} x gamma {0.95, 0.99} x seeds),
trained as one vmapped program; the member with the lowest held-out TD error (10% of episodes) wins.

    python -m launchers.train --config=configs/iql_grid_crad.py:sandbox --workdir=runs/iql_grid_crad

Produces iql_report.json with a row per member (held-out TD error, final losses) and the chosen
member's selector/. `sandbox` makes its own sandbox sweep like configs/iql_crad.py:sandbox.
"""

from configs import iql_crad


def get_config(arg: str | None = None):
  c = iql_crad.get_config(arg)
  c.stage = "iql_grid"
  if arg == "smoke":
    c.grid.expectile = (0.7, 0.9)
    c.grid.beta = (3.0,)
    c.grid.gamma = (0.99,)
  return c
