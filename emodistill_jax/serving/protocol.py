"""OpenAI chat-completions schema: request validation and response bodies (pure functions, no I/O).

What is honoured: messages (roles system / developer / user / assistant; content a string or a list of
text parts), model, temperature (default 1, as OpenAI), top_p, max_completion_tokens or max_tokens
(default: the server's limit, clipped to the model's context), seed, stop (a string or up to 4),
n = 1, stream, stream_options.include_usage. Fields a caller would expect to change the output but that
this server does not compute (tools, logprobs, logit_bias, non-zero presence / frequency penalty, a JSON
response_format, n > 1) are refused with 400 rather than silently ignored; other fields (user,
metadata, store, ...) are ignored.
"""

from __future__ import annotations

import dataclasses
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

ROLES = ("system", "developer", "user", "assistant")
MAX_STOP = 4


class APIError(Exception):
  """An error answered to the client as OpenAI's `{"error": {...}}` body with an HTTP status."""

  def __init__(self, status: int, message: str, type: str = "invalid_request_error", param: str | None = None,
               code: str | None = None, headers: Mapping[str, str] | None = None):
    super().__init__(message)
    self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
    self.headers = dict(headers or {})

  def body(self) -> dict:
    return error_body(self.message, self.type, self.param, self.code)


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict:
  return {"error": {"message": message, "type": type, "param": param, "code": code}}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
  return APIError(400, message, "invalid_request_error", param, code)


@dataclasses.dataclass(frozen=True)
class ChatRequest:
  model: str
  messages: list[dict[str, str]]  # [{"role", "content"}] with "developer" mapped to "system"
  temperature: float = 1.0
  top_p: float = 1.0
  max_tokens: int | None = None  # None: the server's default
  seed: int | None = None
  stop: tuple[str, ...] = ()
  stream: bool = False
  include_usage: bool = False


def _number(body: Mapping, key: str, default: float, lo: float, hi: float, lo_open: bool = False) -> float:
  value = body.get(key)
  if value is None:
    return default
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise bad_request(f"'{key}' must be a number", key)
  if not math.isfinite(value):  # JSON NaN / Infinity parse as floats and compare False with any bound
    raise bad_request(f"'{key}' must be a finite number; got {value}", key)
  if value < lo or value > hi or (lo_open and value == lo):
    raise bad_request(f"'{key}' must be in {'(' if lo_open else '['}{lo}, {hi}]; got {value}", key)
  return float(value)


def _integer(body: Mapping, key: str) -> int | None:
  value = body.get(key)
  if value is None:
    return None
  if isinstance(value, bool) or not isinstance(value, int):
    raise bad_request(f"'{key}' must be an integer", key)
  return value


def _content(message: Mapping, i: int) -> str:
  content = message.get("content")
  if isinstance(content, str):
    return content
  if isinstance(content, list):  # content parts: only text is understood
    texts = []
    for part in content:
      if not isinstance(part, Mapping) or part.get("type") != "text" or not isinstance(part.get("text"), str):
        raise bad_request(f"messages[{i}].content: only text parts are supported", f"messages[{i}].content")
      texts.append(part["text"])
    return "".join(texts)
  raise bad_request(f"messages[{i}].content must be a string or a list of text parts", f"messages[{i}].content")


def _messages(body: Mapping) -> list[dict[str, str]]:
  messages = body.get("messages")
  if messages is None:
    raise bad_request("'messages' is a required property", "messages")
  if not isinstance(messages, list) or not messages:
    raise bad_request("'messages' must be a non-empty array", "messages")
  out = []
  for i, message in enumerate(messages):
    if not isinstance(message, Mapping):
      raise bad_request(f"messages[{i}] must be an object", f"messages[{i}]")
    role = message.get("role")
    if role not in ROLES:
      raise bad_request(f"messages[{i}].role must be one of {', '.join(ROLES)}; got {role!r}", f"messages[{i}].role")
    if message.get("tool_calls") or message.get("function_call"):
      raise bad_request(f"messages[{i}]: tool calls are not supported", f"messages[{i}]")
    out.append({"role": "system" if role == "developer" else role, "content": _content(message, i)})
  return out


def _stop(body: Mapping) -> tuple[str, ...]:
  stop = body.get("stop")
  if stop is None:
    return ()
  stops = [stop] if isinstance(stop, str) else stop
  if (not isinstance(stops, list) or len(stops) > MAX_STOP
      or not all(isinstance(s, str) and s for s in stops)):
    raise bad_request(f"'stop' must be a non-empty string or a list of up to {MAX_STOP} of them", "stop")
  return tuple(stops)


def _refuse_unsupported(body: Mapping) -> None:
  for key in ("tools", "functions", "logit_bias"):
    if body.get(key):
      raise bad_request(f"'{key}' is not supported by this server", key)
  if body.get("tool_choice") not in (None, "none"):
    raise bad_request("'tool_choice' is not supported by this server", "tool_choice")
  if body.get("logprobs") or body.get("top_logprobs"):
    raise bad_request("'logprobs' is not supported by this server", "logprobs")
  for key in ("presence_penalty", "frequency_penalty"):
    if _number(body, key, 0.0, -2.0, 2.0) != 0.0:
      raise bad_request(f"'{key}' other than 0 is not supported by this server", key)
  fmt = body.get("response_format")
  if fmt is not None and (not isinstance(fmt, Mapping) or fmt.get("type") != "text"):
    raise bad_request("only response_format {'type': 'text'} is supported", "response_format")


def parse_chat_request(body: Any, max_new_tokens: int) -> ChatRequest:
  """A decoded JSON body -> ChatRequest; raises APIError(400) naming the offending field."""
  if not isinstance(body, Mapping):
    raise bad_request("the request body must be a JSON object")
  model = body.get("model")
  if not isinstance(model, str) or not model:
    raise bad_request("'model' is a required string", "model")
  messages = _messages(body)
  n = _integer(body, "n")
  if n is not None and n != 1:
    raise bad_request(f"only n=1 is supported; got n={n}", "n")
  key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
  max_tokens = _integer(body, key)
  if max_tokens is not None and not 1 <= max_tokens <= max_new_tokens:
    raise bad_request(f"'{key}' must be between 1 and {max_new_tokens}; got {max_tokens}", key)
  seed = _integer(body, "seed")
  stream = body.get("stream", False)
  if not isinstance(stream, bool) and stream is not None:
    raise bad_request("'stream' must be a boolean", "stream")
  options = body.get("stream_options") or {}
  if not isinstance(options, Mapping):
    raise bad_request("'stream_options' must be an object", "stream_options")
  _refuse_unsupported(body)
  return ChatRequest(
      model=model, messages=messages, temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
      top_p=_number(body, "top_p", 1.0, 0.0, 1.0, lo_open=True), max_tokens=max_tokens, seed=seed,
      stop=_stop(body), stream=bool(stream), include_usage=bool(options.get("include_usage", False)))


def completion_id() -> str:
  return f"chatcmpl-{uuid.uuid4().hex}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
  return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
          "total_tokens": prompt_tokens + completion_tokens}


def chat_completion(id: str, model: str, text: str, finish_reason: str, prompt_tokens: int,
                    completion_tokens: int, created: int | None = None) -> dict:
  return {
      "id": id, "object": "chat.completion", "created": int(created or time.time()), "model": model,
      "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                   "finish_reason": finish_reason}],
      "usage": usage(prompt_tokens, completion_tokens),
  }


def chat_chunks(id: str, model: str, pieces: Sequence[str], finish_reason: str, prompt_tokens: int,
                completion_tokens: int, include_usage: bool, created: int | None = None) -> list[dict]:
  """The `chat.completion.chunk` objects of one streamed answer: role, one chunk per text piece, the
  finish reason, and (when asked) a last chunk with usage and no choices, as OpenAI sends them."""
  created = int(created or time.time())
  extra = {"usage": None} if include_usage else {}

  def chunk(delta: dict, finish: str | None) -> dict:
    return {"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra}

  out = [chunk({"role": "assistant", "content": ""}, None)]
  out += [chunk({"content": piece}, None) for piece in pieces if piece]
  out.append(chunk({}, finish_reason))
  if include_usage:
    out.append({"id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [],
                "usage": usage(prompt_tokens, completion_tokens)})
  return out


def model_list(ids: Sequence[tuple[str, str | None]], created: int) -> dict:
  """[(model id, parent id or None)] -> the /v1/models body."""
  data = []
  for model_id, parent in ids:
    entry = {"id": model_id, "object": "model", "created": created, "owned_by": "emodistill"}
    if parent is not None:
      entry["parent"] = parent
    data.append(entry)
  return {"object": "list", "data": data}
