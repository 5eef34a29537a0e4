"""An OpenAI-compatible HTTP server (`/v1/models`, `/v1/chat/completions`, streaming) for one Flax
Qwen2 model and an optional LoRA adapter, built on aiohttp.

    from emodistill_jax.serving import start_server
    with start_server(model="/path/to/model", adapter="/path/to/adapter", port=0) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="unused")

See `server` (starting and stopping), `app` (routes and status codes), `protocol` (the schema and what
is honoured), `engine` (the generation worker and micro-batching), `config` (every setting).
"""

from emodistill_jax.serving.config import default_config, make_config
from emodistill_jax.serving.engine import Completion, Engine, Job
from emodistill_jax.serving.protocol import APIError, ChatRequest, parse_chat_request
from emodistill_jax.serving.server import ServerHandle, build_state, serve, start_server

__all__ = ["APIError", "ChatRequest", "Completion", "Engine", "Job", "ServerHandle", "build_state",
           "default_config", "make_config", "parse_chat_request", "serve", "start_server"]
