"""Serve a Flax Qwen2 model (and optionally a LoRA adapter) behind an OpenAI-compatible API.

    python -m launchers.serve --config=configs/serve.py --config.model=/path/to/Qwen2.5-7B-Instruct \
        [--config.adapter=runs/jpo_crad/adapter] [--config.port=8000] [--workdir=runs/serve]
    EMODISTILL_SERVE_API_KEY=secret python -m launchers.serve ...   # require `Authorization: Bearer secret`

Needs an HF model folder (config.json, safetensors, tokenizer with a chat template); the adapter is a
PEFT LoRA folder (`save_peft_adapter` writes one), served as a second model id beside the base.
Clients use any OpenAI client: `openai.OpenAI(base_url="http://127.0.0.1:8000/v1", api_key=...)`.
Binds 127.0.0.1 unless `--config.host=0.0.0.0`. Writes `<workdir>/server.json` (url, model ids) once
it listens; SIGINT / SIGTERM stop it gracefully (in-flight requests finish).
Presets: `default`; `smoke` (port 0, float32, small limits; with no `model` it builds and serves a tiny
random model in `<workdir>/tiny_model`, ready in a few seconds on a laptop CPU).
"""

from ml_collections import config_dict

from emodistill_jax.serving.config import default_config


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  config = default_config()
  config.workdir = "runs/serve"
  config.tiny_model = False  # with no `model`: build and serve a tiny random model in <workdir>/tiny_model
  if arg in (None, "", "default"):
    return config
  if arg == "smoke":
    config.port = 0
    config.tiny_model = True
    config.dtype = "float32"
    config.max_prompt_tokens = 512
    config.max_new_tokens = 32
    config.queue_size = 8
    config.warmup = False
    config.shutdown_timeout_s = 10.0
    return config
  raise ValueError(f"unknown preset {arg!r} for configs/serve.py; expected default or smoke")
