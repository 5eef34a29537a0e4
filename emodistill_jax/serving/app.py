"""The aiohttp application: routes, API-key check, error bodies, fault injection, SSE streaming.

Statuses: 400 invalid request, 401 missing / wrong API key, 404 unknown model or route, 405 wrong
method, 413 body or prompt too large, 429 queue full (and injected faults), with `Retry-After`, 500
internal error (message only; the traceback goes to the server log), 503 while shutting down. Every
error body is OpenAI's `{"error": {"message", "type", "param", "code"}}`. API keys are compared in
constant time and never logged or echoed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import logging
import time

import jinja2
import numpy as np
from aiohttp import web

from emodistill_jax.serving import protocol
from emodistill_jax.serving.engine import Engine, EngineClosed, Job, QueueFull
from emodistill_jax.serving.protocol import APIError

log = logging.getLogger(__name__)


@dataclasses.dataclass(eq=False)
class ServerState:
  """Everything the handlers need; built by `server.build_state`."""
  config: object  # the ConfigDict
  engine: Engine
  encode: object  # messages -> prompt ids
  models: dict  # served model id -> LoRA or None (the base)
  parents: dict  # served model id -> parent id or None
  context_length: int
  api_keys: tuple[str, ...] = ()
  created: int = dataclasses.field(default_factory=lambda: int(time.time()))
  draining: bool = False

  def __post_init__(self):
    self.fault_rng = np.random.default_rng(self.config.fault_seed)
    self.seed_rng = np.random.default_rng(self.config.seed)


STATE = web.AppKey("state", ServerState)


def _error_response(error: APIError) -> web.Response:
  return web.json_response(error.body(), status=error.status, headers=error.headers)


_STATUS_CODES = {405: "method_not_allowed", 413: "request_too_large"}


@web.middleware
async def errors_middleware(request: web.Request, handler):
  try:
    if request.path.startswith("/v1"):
      _check_key(request.app[STATE], request)
    return await handler(request)
  except APIError as e:
    return _error_response(e)
  except web.HTTPException as e:  # routing (404, 405) and aiohttp's own body-size check (413)
    if e.status < 400:
      raise
    message = (f"request body larger than {request.app[STATE].config.max_request_bytes} bytes" if e.status == 413
               else f"Invalid URL ({request.method} {request.path})" if e.status == 404
               else f"{e.reason} ({request.method} {request.path})")
    return _error_response(APIError(e.status, message, "invalid_request_error", None, _STATUS_CODES.get(e.status)))
  except asyncio.CancelledError:
    raise
  except Exception:
    log.exception("internal error on %s %s", request.method, request.path)
    return _error_response(APIError(500, "The server had an error while processing your request.", "server_error",
                                    code="internal_error"))


def _check_key(state: ServerState, request: web.Request) -> None:
  if not state.api_keys:
    return
  header = request.headers.get("Authorization", "")
  scheme, _, token = header.partition(" ")
  if scheme.lower() != "bearer" or not token.strip():
    raise APIError(401, "You didn't provide an API key. Provide it in the Authorization header "
                   "(Authorization: Bearer YOUR_KEY).", "invalid_request_error", code="invalid_api_key")
  token = token.strip().encode()
  if not any(hmac.compare_digest(token, key.encode()) for key in state.api_keys):
    raise APIError(401, "Incorrect API key provided.", "invalid_request_error", code="invalid_api_key")


async def _inject_faults(state: ServerState) -> None:
  c = state.config
  lo, hi = c.fault_latency_ms
  if hi > 0:
    await asyncio.sleep(state.fault_rng.uniform(lo, hi) / 1000.0)
  if c.fault_error_rate > 0 and state.fault_rng.random() < c.fault_error_rate:
    if state.fault_rng.random() < 0.5:
      raise APIError(429, "Injected fault: rate limit reached, retry later.", "requests", code="rate_limit_exceeded",
                     headers={"Retry-After": str(c.retry_after_s)})
    raise APIError(500, "Injected fault: the server had an error while processing your request.", "server_error",
                   code="internal_error")


async def _read_json(request: web.Request, limit: int):
  if request.content_length is not None and request.content_length > limit:
    raise APIError(413, f"request body larger than {limit} bytes", code="request_too_large")
  raw = await request.read()  # aiohttp enforces client_max_size on chunked bodies (HTTPRequestEntityTooLarge)
  try:
    return json.loads(raw)
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    raise protocol.bad_request(f"could not parse the JSON body: {e}", code="invalid_json") from None


async def health(request: web.Request) -> web.Response:
  state = request.app[STATE]
  engine = state.engine
  return web.json_response({"status": "draining" if state.draining else "ok", "queued": engine.pending,
                            "batches": engine.batches_run, "largest_batch": engine.largest_batch})


async def list_models(request: web.Request) -> web.Response:
  state = request.app[STATE]
  return web.json_response(protocol.model_list([(m, state.parents[m]) for m in state.models], state.created))


async def get_model(request: web.Request) -> web.Response:
  state, model = request.app[STATE], request.match_info["model"]
  if model not in state.models:
    raise _unknown_model(model)
  return web.json_response(protocol.model_list([(model, state.parents[model])], state.created)["data"][0])


def _unknown_model(model: str) -> APIError:
  return APIError(404, f"The model `{model}` does not exist.", "invalid_request_error", "model", "model_not_found")


def _job(state: ServerState, req: protocol.ChatRequest) -> Job:
  c = state.config
  if req.model not in state.models:
    raise _unknown_model(req.model)
  try:
    prompt = state.encode(req.messages)
  except (jinja2.TemplateError, ValueError) as e:  # e.g. a template that rejects the order of roles
    raise protocol.bad_request(f"the model's chat template rejected the messages: {e}", "messages") from None
  limit = min(c.max_prompt_tokens, state.context_length - 1)
  if len(prompt) > limit:
    raise APIError(413, f"The prompt has {len(prompt)} tokens; this server accepts at most {limit}.",
                   "invalid_request_error", "messages", "context_length_exceeded")
  room = state.context_length - len(prompt)
  if req.max_tokens is not None and req.max_tokens > room:
    raise protocol.bad_request(f"The prompt ({len(prompt)} tokens) plus max_tokens ({req.max_tokens}) exceeds the "
                               f"model's context of {state.context_length} tokens.", "max_tokens",
                               "context_length_exceeded")
  max_tokens = req.max_tokens if req.max_tokens is not None else min(c.max_new_tokens, room)
  seed = req.seed if req.seed is not None else int(state.seed_rng.integers(1 << 31))
  return Job(prompt=prompt, max_tokens=max_tokens, temperature=req.temperature, top_p=req.top_p, seed=seed,
             lora=state.models[req.model], stop=req.stop, pieces=req.stream)


async def chat_completions(request: web.Request) -> web.StreamResponse:
  state = request.app[STATE]
  if state.draining:
    raise APIError(503, "The server is shutting down.", "server_error", code="shutting_down")
  await _inject_faults(state)
  req = protocol.parse_chat_request(await _read_json(request, state.config.max_request_bytes),
                                    state.config.max_new_tokens)
  job = _job(state, req)
  try:
    future = state.engine.submit(job)
  except QueueFull:
    raise APIError(429, "The server is busy: too many queued requests. Retry later.", "requests",
                   code="rate_limit_exceeded", headers={"Retry-After": str(state.config.retry_after_s)}) from None
  except EngineClosed:
    raise APIError(503, "The server is shutting down.", "server_error", code="shutting_down") from None
  result = await asyncio.wrap_future(future)
  cid, created = protocol.completion_id(), int(time.time())
  log.info("%s model=%s prompt=%d completion=%d finish=%s", cid, req.model, result.prompt_tokens,
           result.completion_tokens, result.finish_reason)
  if not req.stream:
    return web.json_response(protocol.chat_completion(cid, req.model, result.text, result.finish_reason,
                                                      result.prompt_tokens, result.completion_tokens, created))
  response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
  await response.prepare(request)
  try:
    for chunk in protocol.chat_chunks(cid, req.model, result.pieces, result.finish_reason, result.prompt_tokens,
                                      result.completion_tokens, req.include_usage, created):
      await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
  except ConnectionResetError:  # the client left mid-stream; nothing more can be sent
    log.info("%s: client disconnected during the stream", cid)
  return response


def create_app(state: ServerState) -> web.Application:
  app = web.Application(middlewares=[errors_middleware], client_max_size=state.config.max_request_bytes)
  app[STATE] = state
  app.router.add_get("/health", health)
  app.router.add_get("/v1/models", list_models)
  app.router.add_get("/v1/models/{model:.+}", get_model)
  app.router.add_post("/v1/chat/completions", chat_completions)
  return app
