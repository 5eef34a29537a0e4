"""Serve a model over an OpenAI-compatible API:

    python -m launchers.serve --config=configs/serve.py --config.model=DIR [--config.adapter=DIR]
"""

from __future__ import annotations

import os

from emodistill_jax import serving
from emodistill_jax.serving.tiny import make_tiny_chat_model
from launchers import common


def main(config) -> None:
  workdir = common.workdir(config.workdir)
  overrides = {k: v for k, v in config.items() if k not in ("workdir", "tiny_model")}
  if overrides["model"] is None:
    if not config.tiny_model:
      common.fail("set --config.model=FOLDER (an HF Qwen2 folder), or use the smoke preset")
    overrides["model"] = make_tiny_chat_model(os.path.join(workdir, "tiny_model"))
    overrides["dtype"] = "float32"

  def on_ready(url: str, state) -> None:
    common.write_json({"url": url, "base_url": url + "/v1", "models": list(state.models), "pid": os.getpid()},
                      os.path.join(workdir, "server.json"))
    print(f"serving {', '.join(state.models)} at {url}/v1 (details in {workdir}/server.json)", flush=True)

  serving.serve(overrides, on_ready=on_ready)
  print("server stopped", flush=True)


if __name__ == "__main__":
  common.run(main)
