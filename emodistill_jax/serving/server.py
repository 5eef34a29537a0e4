"""Build the server from a config and run it: blocking (`serve`, for the launcher) or in a background
thread (`start_server`, for tests and other code).

Graceful stop (SIGINT / SIGTERM in `serve`, `handle.stop()` in-process): stop listening and answer 503
to new requests on open connections, let in-flight and queued requests finish (up to
`shutdown_timeout_s`), then stop the worker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import ipaddress
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping

from aiohttp import web

from emodistill_jax.errors import ConfigError
from emodistill_jax.lm import load_peft_adapter, load_pretrained
from emodistill_jax.lm.tokenizer import encode_chat, end_of_turn_ids, load_tokenizer
from emodistill_jax.serving.app import ServerState, create_app
from emodistill_jax.serving.config import make_config
from emodistill_jax.serving.engine import Engine

log = logging.getLogger(__name__)


def _folder_name(folder: str) -> str:
  return os.path.basename(os.path.normpath(folder))


def _api_keys(config) -> tuple[str, ...]:
  raw = config.api_key if config.api_key is not None else os.environ.get(config.api_key_env or "", "")
  return tuple(k.strip() for k in (raw or "").split(",") if k.strip())


def build_state(config, model=None, tokenizer=None, lora=None) -> ServerState:
  """Load the model (unless given), the adapter (unless given) and the tokenizer; start the worker.

  model: a LanguageModel to serve instead of loading `config.model` (its folder then only names it);
  lora: a LoRA to serve as `adapter_name` instead of loading `config.adapter`.
  """
  if model is None:
    if not config.model:
      raise ConfigError("config.model (an HF Qwen2 folder) is required")
    model = load_pretrained(config.model, dtype=config.dtype)
  folder = config.model or getattr(model, "folder", None)
  tok_folder = config.tokenizer or folder
  if tokenizer is None:
    if not tok_folder:
      raise ConfigError("no tokenizer: set config.tokenizer or config.model")
    tokenizer = load_tokenizer(tok_folder)
  model_name = config.model_name or (_folder_name(folder) if folder else "model")
  models, parents = {model_name: None}, {model_name: None}
  if lora is None and config.adapter:
    lora = load_peft_adapter(config.adapter, model)
  if lora is not None:
    adapter_name = config.adapter_name or (_folder_name(config.adapter) if config.adapter else f"{model_name}-lora")
    if adapter_name == model_name:
      raise ConfigError(f"the adapter and the base model would both be served as {model_name!r}; set "
                       "config.adapter_name or config.model_name")
    models[adapter_name], parents[adapter_name] = lora, model_name
  stop_ids = list(end_of_turn_ids(tokenizer))
  eos = model.config.eos_token_id
  stop_ids += [int(t) for t in ((eos,) if isinstance(eos, int) else (eos or ())) if int(t) not in stop_ids]
  pad = next((p for p in (tokenizer.pad_token_id, model.config.pad_token_id) if p is not None),
             stop_ids[0] if stop_ids else 0)
  decode = functools.partial(tokenizer.decode, skip_special_tokens=True)
  engine = Engine(model, decode, stop_ids, pad, config.queue_size, config.max_batch_size)
  if config.warmup:
    try:
      engine.warmup(list(models.values()))
    except BaseException:
      engine.close(cancel_pending=True)
      raise
  return ServerState(config=config, engine=engine, encode=functools.partial(encode_chat, tokenizer),
                     models=models, parents=parents, context_length=model.config.max_position_embeddings,
                     api_keys=_api_keys(config))


def exposure_warning(host: str, api_keys) -> str | None:
  """A warning when the server listens beyond this machine (any address but loopback) with no API key."""
  if api_keys:
    return None
  try:
    if ipaddress.ip_address(host).is_loopback:
      return None
  except ValueError:
    if host == "localhost":
      return None
  return (f"serving on {host} with no API key: anyone who can reach this machine can use the model; set "
          "api_key_env (or api_key) to require a key, or bind host=127.0.0.1")


async def _serve(state: ServerState, stop: asyncio.Event, on_ready: Callable[[str, int], None]) -> None:
  c = state.config
  warning = exposure_warning(c.host, state.api_keys)
  if warning:
    log.warning(warning)
    print(f"warning: {warning}", file=sys.stderr, flush=True)
  runner = web.AppRunner(create_app(state), handle_signals=False, shutdown_timeout=c.shutdown_timeout_s)
  await runner.setup()
  try:
    site = web.TCPSite(runner, c.host, c.port)
    await site.start()
    port = runner.addresses[0][1]
    host = c.host if ":" not in c.host else f"[{c.host}]"
    on_ready(f"http://{host}:{port}", port)
    await stop.wait()
    log.info("stopping: finishing in-flight requests (up to %.0fs)", c.shutdown_timeout_s)
    state.draining = True
  finally:
    await runner.cleanup()  # closes the listener, waits for running handlers, closes connections
    await asyncio.to_thread(state.engine.close, c.shutdown_timeout_s, True)


@dataclasses.dataclass(eq=False)
class ServerHandle:
  """A server running in a background thread. `url` is the root, `base_url` the `/v1` root that the
  `openai` client takes; `models` the served ids (base first, then the adapter)."""
  url: str
  port: int
  models: tuple[str, ...]
  state: ServerState
  _loop: asyncio.AbstractEventLoop
  _stop: asyncio.Event
  _thread: threading.Thread

  @property
  def base_url(self) -> str:
    return self.url + "/v1"

  @property
  def engine(self) -> Engine:
    return self.state.engine

  def stop(self, timeout: float | None = None) -> None:
    """Graceful: stop accepting, finish in-flight requests, stop the worker. Idempotent."""
    if self._thread.is_alive():
      self._loop.call_soon_threadsafe(self._stop.set)
      self._thread.join(timeout)

  def __enter__(self) -> "ServerHandle":
    return self

  def __exit__(self, *exc) -> None:
    self.stop()


def start_server(config: Mapping | None = None, *, language_model=None, chat_tokenizer=None, lora=None,
                 **overrides) -> ServerHandle:
  """Start the server in a daemon thread and return once it listens.

  config: a ConfigDict or mapping of `serving.default_config()` keys, overrides as keywords (e.g.
  `start_server(model="/path", port=0)`); language_model (a LanguageModel), chat_tokenizer and lora:
  already loaded objects to serve instead of loading `model`, `tokenizer` and `adapter` from folders.
  """
  config = make_config(config, **overrides)
  state = build_state(config, language_model, chat_tokenizer, lora)
  loop = asyncio.new_event_loop()
  ready = threading.Event()
  box: dict = {}

  def on_ready(url: str, port: int) -> None:
    box.update(url=url, port=port)
    ready.set()

  def run() -> None:
    asyncio.set_event_loop(loop)
    box["stop"] = asyncio.Event()
    try:
      loop.run_until_complete(_serve(state, box["stop"], on_ready))
    except BaseException as e:  # a bind error, reported to the caller below
      box["error"] = e
      ready.set()
    finally:
      loop.run_until_complete(loop.shutdown_default_executor())
      loop.close()

  thread = threading.Thread(target=run, name="emodistill-serve", daemon=True)
  thread.start()
  ready.wait()
  if "error" in box:
    thread.join()
    raise box["error"]
  return ServerHandle(box["url"], box["port"], tuple(state.models), state, loop, box["stop"], thread)


def serve(config: Mapping | None = None, on_ready: Callable[[str, ServerState], None] | None = None,
          **overrides) -> None:
  """Run until SIGINT or SIGTERM, then stop gracefully. on_ready(url, state) runs once it listens."""
  config = make_config(config, **overrides)
  state = build_state(config)

  async def main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
      loop.add_signal_handler(sig, stop.set)
    await _serve(state, stop, lambda url, port: on_ready and on_ready(url, state))

  asyncio.run(main())
