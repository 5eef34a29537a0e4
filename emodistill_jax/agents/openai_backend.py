"""An OpenAI-compatible chat backend over the `openai` package's async client (docs/real_models.md).

One `ChatBackend` talks to one endpoint and model (OpenAI, DashScope/Qwen, vLLM, Ollama, the project's own
server) for every LLM role. Choices:

- Retries are ours only: every `AsyncOpenAI` client is built with `max_retries=0`, so each HTTP attempt is
  counted here. 429, 5xx, 408, timeouts and connection errors are retried with exponential backoff and
  jitter (`min(backoff_max, backoff_base * 2**retry)`, drawn from its upper half); a `Retry-After` header
  (seconds, `retry-after-ms`, or an HTTP date) replaces the backoff when present. Other 4xx fail at once.
- API keys are used round-robin per HTTP attempt (a retry moves on to the next key, which spreads the
  load of a rate-limited key). They are held in `ApiKey` wrappers whose repr and str are redacted, so
  that a config or backend printed, logged or dumped never shows one; errors name a key only by its
  position ("API key #2 of 3"), server messages are scrubbed of any key, and a `BackendError` is raised
  outside the `except` block so that it carries no reference to the client's exception (whose request
  holds the Authorization header).
- The response cache is keyed by a SHA-256 of the whole request (base URL, model, messages, temperature,
  max_tokens, extra_body) plus an optional `sample_key`, never the API key: one JSON file per entry under
  `cache_dir/<2 hex>/<64 hex>.json`, written to a temporary file and `os.replace`d so that a reader never
  sees half an entry. Only successful responses are stored; an unreadable entry counts as a miss. The
  `sample_key` exists because a sweep asks the same prompt at temperature > 0 in many episodes (the first
  turn of a scenario with one emotion): without it every episode would replay the first sample. Agents
  pass the episode id and seed, so a re-run replays its own samples and different episodes stay
  independent draws.
- The semaphore bounds requests in flight, not calls: a call waiting out a backoff holds no slot.
- A backend belongs to one event loop (its clients and semaphore bind to the loop that first uses them);
  close it with `aclose()` or use it as an async context manager.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import email.utils
import hashlib
import itertools
import json
import logging
import math
import os
import random
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

import openai

from emodistill_jax.errors import ConfigError

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
_CACHE_KEY_FIELDS = ("base_url", "model", "messages", "temperature", "max_tokens", "extra_body", "sample_key")
_OPTIONAL_KEY_FIELDS = ("top_p",)  # in the key only when set, so caches made before the field stay valid


class BackendError(RuntimeError):
  """A chat request failed for good. Never carries an API key or the client's exception (see module doc).

  status: the HTTP status of the last attempt (None for timeouts and connection errors); cause: one of
  "auth", "client_error", "rate_limit", "server_error", "timeout", "connection", "bad_response";
  attempts: HTTP attempts made.
  """

  def __init__(self, message: str, *, status: int | None = None, cause: str = "", attempts: int = 0):
    super().__init__(message)
    self.status = status
    self.cause = cause
    self.attempts = attempts


class ApiKey:
  """An API key that never prints itself: repr and str are redacted, `reveal()` gives the value.

  Not a dataclass and not a str on purpose: `dataclasses.asdict` would recurse into a dataclass and
  `json.dumps` would happily write a str subclass, while this object makes either fail loudly.
  """

  __slots__ = ("_value",)

  def __init__(self, value: str):
    self._value = value

  def reveal(self) -> str:
    return self._value

  def __repr__(self) -> str:
    return "ApiKey(***)"

  __str__ = __repr__

  def __eq__(self, other: object) -> bool:
    return isinstance(other, ApiKey) and other._value == self._value

  def __hash__(self) -> int:
    return hash(("ApiKey", self._value))


def _as_keys(keys: Any) -> tuple[ApiKey, ...]:
  """str (comma-separated), ApiKey or a sequence of them -> tuple of ApiKey, blanks dropped."""
  if keys is None:
    return ()
  if isinstance(keys, (str, ApiKey)):
    keys = [keys]
  out = []
  for k in keys:
    if isinstance(k, ApiKey):
      out.append(k)
    else:
      out.extend(ApiKey(part.strip()) for part in str(k).split(",") if part.strip())
  return tuple(out)


def _is_set(value: Any) -> bool:
  return value is not None and not (isinstance(value, (str, Sequence, Mapping)) and len(value) == 0)


@dataclasses.dataclass(frozen=True, repr=False)
class BackendConfig:
  """Settings of one endpoint and model.

  api_keys: any sequence of keys (or one comma-separated string); stored as a tuple of `ApiKey`.
  max_tokens None lets the server decide. extra_body is merged into the request JSON (e.g. DashScope's
  {"enable_thinking": False}). timeout is per HTTP attempt, in seconds. max_retries counts retries, so a
  call makes at most max_retries + 1 attempts. A Retry-After longer than retry_after_max is cut to it.
  cache_dir None disables the response cache. env_prefix only names variables in error messages.
  """

  base_url: str = ""
  model: str = ""
  api_keys: tuple[ApiKey, ...] = ()
  temperature: float = 0.7
  top_p: float | None = None  # None: not sent (the server's default)
  max_tokens: int | None = 256
  extra_body: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  timeout: float = 60.0
  max_concurrency: int = 8
  max_retries: int = 5
  backoff_base: float = 1.0
  backoff_max: float = 30.0
  retry_after_max: float = 120.0
  cache_dir: str | None = None
  env_prefix: str = "EMODISTILL"

  def __post_init__(self):
    object.__setattr__(self, "api_keys", _as_keys(self.api_keys))
    object.__setattr__(self, "extra_body", dict(self.extra_body or {}))
    if self.cache_dir is not None:
      object.__setattr__(self, "cache_dir", os.fspath(self.cache_dir))

  @classmethod
  def from_env(cls, prefix: str = "EMODISTILL", *, environ: Mapping[str, str] | None = None,
               **overrides: Any) -> BackendConfig:
    """Config from `{prefix}_BASE_URL`, `{prefix}_API_KEYS` (comma-separated), `{prefix}_MODEL` and
    `{prefix}_CACHE_DIR`, with `overrides` (any field) on top.

    Precedence, per field: an override that is set (not None, not empty) > the environment variable (if
    set and not empty) > the field's default. So a config file can leave `base_url=None` or `""` to defer
    to the environment, and a value it does give always wins. The same rule holds for fields without a
    variable (None keeps the default), so `max_tokens=None` ("server decides") needs
    `dataclasses.replace`. `environ` replaces `os.environ` (tests). Nothing is validated here; call
    `validate()` (the `ChatBackend` constructor does).
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {"env_prefix": prefix}
    for field in ("base_url", "api_keys", "model", "cache_dir"):
      value = environ.get(f"{prefix}_{field.upper()}", "").strip()
      if value:
        values[field] = value
    unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
      raise TypeError(f"BackendConfig has no field(s) {', '.join(sorted(unknown))}")
    values.update({k: v for k, v in overrides.items() if _is_set(v)})
    return cls(**values)

  def validate(self) -> BackendConfig:
    """Raises ConfigError listing every problem (with the variable or field that fixes it); returns self."""
    p = self.env_prefix
    problems = []
    if not self.base_url:
      problems.append(f"no endpoint: set {p}_BASE_URL or the config field base_url "
                      "(e.g. https://api.openai.com/v1)")
    elif not self.base_url.startswith(("http://", "https://")):
      problems.append(f"base_url {self.base_url!r} must start with http:// or https:// "
                      f"(set {p}_BASE_URL or the config field base_url)")
    if not self.api_keys:
      problems.append(f"no API key: set {p}_API_KEYS (comma-separated) or the config field api_keys")
    else:
      bad = [i + 1 for i, k in enumerate(self.api_keys) if not k.reveal() or any(c.isspace() for c in k.reveal())]
      if bad:
        problems.append(f"API key(s) #{', #'.join(map(str, bad))} are empty or contain whitespace "
                        f"(check {p}_API_KEYS or the config field api_keys)")
    if not self.model:
      problems.append(f"no model: set {p}_MODEL or the config field model")
    if not (self.timeout > 0):
      problems.append(f"timeout must be > 0 seconds, got {self.timeout}")
    if self.max_concurrency < 1:
      problems.append(f"max_concurrency must be >= 1, got {self.max_concurrency}")
    if self.max_retries < 0:
      problems.append(f"max_retries must be >= 0, got {self.max_retries}")
    if self.backoff_base < 0 or self.backoff_max < 0 or self.retry_after_max < 0:
      problems.append("backoff_base, backoff_max and retry_after_max must be >= 0")
    if self.top_p is not None and not 0 < self.top_p <= 1:
      problems.append(f"top_p must be in (0, 1], got {self.top_p}")
    if self.max_tokens is not None and self.max_tokens < 1:
      problems.append(f"max_tokens must be >= 1 or None, got {self.max_tokens}")
    if problems:
      raise ConfigError("OpenAI-compatible backend is not configured: " + "; ".join(problems))
    return self

  def to_json(self) -> dict[str, Any]:
    """The settings for a manifest: every field, keys replaced by their count."""
    d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "api_keys"}
    d["extra_body"] = dict(self.extra_body)
    d["num_api_keys"] = len(self.api_keys)
    return d

  def __repr__(self) -> str:
    fields = ", ".join(f"{k}={v!r}" for k, v in self.to_json().items() if k != "num_api_keys")
    return f"BackendConfig({fields}, api_keys=<{len(self.api_keys)} redacted>)"


@dataclasses.dataclass(frozen=True)
class Completion:
  text: str
  prompt_tokens: int
  completion_tokens: int
  cached: bool
  finish_reason: str | None = None  # "length" means max_tokens cut the answer


def cache_key(request: Mapping[str, Any]) -> str:
  """SHA-256 of the canonical JSON of the request fields that decide the answer."""
  fields = {k: request.get(k) for k in _CACHE_KEY_FIELDS}
  fields.update({k: request[k] for k in _OPTIONAL_KEY_FIELDS if request.get(k) is not None})  # keys unchanged if unset
  canonical = json.dumps(fields, sort_keys=True,
                         ensure_ascii=False, separators=(",", ":"))
  return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _retry_after(headers: Mapping[str, str]) -> float | None:
  """Seconds the server asks us to wait: `retry-after-ms`, `retry-after` seconds or HTTP date."""
  for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
    raw = headers.get(name)
    if raw is None:
      continue
    try:
      value = float(raw) * scale
      if math.isfinite(value) and value >= 0:
        return value
    except ValueError:
      pass
    if name == "retry-after":
      try:
        when = email.utils.parsedate_to_datetime(raw)
      except (TypeError, ValueError):
        return None
      if when is not None:
        return max(0.0, when.timestamp() - time.time())
  return None


@dataclasses.dataclass
class _Attempt:
  """What one failed attempt tells the retry loop; holds nothing of the client's exception."""
  cause: str
  message: str
  status: int | None = None
  retry_after: float | None = None
  retryable: bool = True


class ChatBackend:
  """`complete(messages, role=...)` against one OpenAI-compatible endpoint; see the module docstring."""

  def __init__(self, config: BackendConfig, *, rng: random.Random | None = None):
    self.config = config.validate()
    self._clients = [
        openai.AsyncOpenAI(api_key=k.reveal(), base_url=config.base_url, timeout=config.timeout, max_retries=0)
        for k in config.api_keys]
    self._next_key = itertools.cycle(range(len(self._clients)))
    self._gate = asyncio.Semaphore(config.max_concurrency)
    self._rng = rng or random.Random()
    self.calls = 0  # complete() calls
    self.requests = 0  # HTTP attempts
    self.retries: collections.Counter[str] = collections.Counter()  # by cause
    self.failures = 0  # complete() calls that raised
    self.cache_hits = 0
    self._usage: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)

  @property
  def model(self) -> str:
    return self.config.model

  def __repr__(self) -> str:
    return (f"ChatBackend(model={self.config.model!r}, base_url={self.config.base_url!r}, "
            f"api_keys=<{len(self._clients)} redacted>, cache_dir={self.config.cache_dir!r})")

  async def __aenter__(self) -> ChatBackend:
    return self

  async def __aexit__(self, *exc: object) -> None:
    await self.aclose()

  async def aclose(self) -> None:
    for client in self._clients:
      await client.close()

  # -- accounting ---------------------------------------------------------------------------------

  def usage_by_role(self) -> dict[str, dict[str, int]]:
    """role -> calls, cache_hits, prompt_tokens, completion_tokens. Tokens are those of network
    responses only (what the endpoint billed); cache hits cost nothing."""
    keys = ("calls", "cache_hits", "prompt_tokens", "completion_tokens")
    return {role: {k: c[k] for k in keys} for role, c in sorted(self._usage.items())}

  def stats(self) -> dict[str, Any]:
    """Every counter, JSON-ready, for logs and manifests."""
    return {"model": self.config.model, "calls": self.calls, "requests": self.requests,
            "retries": dict(self.retries), "failures": self.failures, "cache_hits": self.cache_hits,
            "usage_by_role": self.usage_by_role()}

  # -- the call -----------------------------------------------------------------------------------

  async def complete(self, messages: Sequence[Mapping[str, str]], *, role: str,
                     temperature: float | None = None, max_tokens: int | None = None,
                     sample_key: str | None = None) -> Completion:
    """One chat completion. temperature / max_tokens None take the config's. sample_key: part of the
    cache key only (never sent), to keep otherwise identical requests independent samples."""
    cfg = self.config
    request = {
        "base_url": cfg.base_url.rstrip("/"), "model": cfg.model,
        "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
        "temperature": cfg.temperature if temperature is None else temperature,
        "max_tokens": cfg.max_tokens if max_tokens is None else max_tokens,
        "extra_body": dict(cfg.extra_body), "sample_key": sample_key,
    }
    if cfg.top_p is not None:  # in the request (and its cache key) only when set
      request["top_p"] = cfg.top_p
    self.calls += 1
    usage = self._usage[role]
    usage["calls"] += 1
    key = cache_key(request)
    hit = self._cache_read(key)
    if hit is not None:
      self.cache_hits += 1
      usage["cache_hits"] += 1
      return hit
    try:
      completion = await self._request_with_retries(request)
    except BackendError:
      self.failures += 1
      raise
    usage["prompt_tokens"] += completion.prompt_tokens
    usage["completion_tokens"] += completion.completion_tokens
    self._cache_write(key, request, completion)
    return completion

  async def _request_with_retries(self, request: dict[str, Any]) -> Completion:
    cfg = self.config
    failure = None
    for attempt in range(cfg.max_retries + 1):
      if failure is not None:
        self.retries[failure.cause] += 1
        delay = self._delay(attempt - 1, failure.retry_after)
        log.info("%s: %s (%s), retry %d/%d in %.2f s", cfg.base_url, failure.cause, failure.message,
                 attempt, cfg.max_retries, delay)
        await asyncio.sleep(delay)
      index = next(self._next_key)
      result = await self._attempt(index, request)
      if isinstance(result, Completion):
        return result
      failure = result
      if not failure.retryable:
        break
    assert failure is not None
    attempts = attempt + 1
    if failure.retryable:
      message = (f"{cfg.base_url} (model {cfg.model}): gave up after {attempts} attempts; last error: "
                 f"{failure.message}")
    else:
      message = f"{cfg.base_url} (model {cfg.model}): {failure.message}"
    log.warning("%s", message)
    raise BackendError(message, status=failure.status, cause=failure.cause, attempts=attempts)

  def _delay(self, retry: int, retry_after: float | None) -> float:
    cfg = self.config
    if retry_after is not None:
      # a little jitter on top, so that workers told the same instant do not all return at once
      return min(retry_after, cfg.retry_after_max) * (1 + 0.1 * self._rng.random())
    ceiling = min(cfg.backoff_max, cfg.backoff_base * 2 ** retry)
    return ceiling * (0.5 + 0.5 * self._rng.random())

  async def _attempt(self, index: int, request: dict[str, Any]) -> Completion | _Attempt:
    """One HTTP attempt with key `index`: a Completion, or what went wrong (never an exception object)."""
    kwargs: dict[str, Any] = {"model": request["model"], "messages": request["messages"],
                              "temperature": request["temperature"]}
    if request["max_tokens"] is not None:
      kwargs["max_tokens"] = request["max_tokens"]
    if request.get("top_p") is not None:
      kwargs["top_p"] = request["top_p"]
    if request["extra_body"]:
      kwargs["extra_body"] = request["extra_body"]
    n = len(self._clients)
    try:
      async with self._gate:
        self.requests += 1
        response = await self._clients[index].chat.completions.create(**kwargs)
    except openai.APITimeoutError:
      return _Attempt("timeout", f"no response within {self.config.timeout} s")
    except openai.APIConnectionError:
      return _Attempt("connection", f"could not connect to {self.config.base_url} (connection error)")
    except openai.APIStatusError as e:
      return self._status_failure(e.status_code, self._scrub(e.message), e.response.headers, index, n)
    except (ValueError, openai.APIResponseValidationError):  # json.JSONDecodeError: a cut-off or garbled body
      return _Attempt("bad_response", "the response body is not valid JSON (cut off in transit?)", status=200)
    try:
      choice = response.choices[0]
      text = choice.message.content or ""
      usage = response.usage
      return Completion(text=text, prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0), cached=False,
                        finish_reason=choice.finish_reason)
    except (AttributeError, IndexError, TypeError, ValueError):
      return _Attempt("bad_response", "the response has no choices[0].message (not an OpenAI-compatible "
                      "chat completion?)", status=200, retryable=False)

  def _status_failure(self, status: int, message: str, headers: Mapping[str, str], index: int,
                      n: int) -> _Attempt:
    cfg = self.config
    which = f"API key #{index + 1} of {n}"
    if status == 429:
      return _Attempt("rate_limit", f"HTTP 429 rate limited: {message}", status, _retry_after(headers))
    if status >= 500:
      return _Attempt("server_error", f"HTTP {status}: {message}", status, _retry_after(headers))
    if status == 408:
      return _Attempt("timeout", f"HTTP 408 request timeout: {message}", status, _retry_after(headers))
    if status == 401:
      # the server's own text often echoes part of the key, so it is left out
      return _Attempt("auth", f"HTTP 401: the endpoint rejected {which} (set a valid key in "
                      f"{cfg.env_prefix}_API_KEYS or the config field api_keys)", status, retryable=False)
    hint = {403: f"{which} is not allowed to use model {cfg.model!r}",
            404: f"check base_url (usually ending in /v1) and the model name {cfg.model!r}"}.get(status)
    text = f"HTTP {status}: {message}" + (f" ({hint})" if hint else "")
    return _Attempt("client_error", text, status, retryable=False)

  def _scrub(self, text: str, limit: int = 300) -> str:
    """A server's error text, without any of our keys, cut to `limit` characters."""
    text = str(text)
    for k in self.config.api_keys:
      if k.reveal():
        text = text.replace(k.reveal(), "***")
    return text if len(text) <= limit else text[:limit] + "..."

  # -- cache --------------------------------------------------------------------------------------

  def _cache_path(self, key: str) -> str | None:
    if self.config.cache_dir is None:
      return None
    return os.path.join(self.config.cache_dir, key[:2], f"{key}.json")

  def _cache_read(self, key: str) -> Completion | None:
    path = self._cache_path(key)
    if path is None or not os.path.exists(path):
      return None
    try:
      with open(path, encoding="utf-8") as f:
        entry = json.load(f)
      r = entry["response"]
      return Completion(text=r["text"], prompt_tokens=r["prompt_tokens"],
                        completion_tokens=r["completion_tokens"], cached=True,
                        finish_reason=r.get("finish_reason"))
    except (OSError, ValueError, KeyError, TypeError) as e:
      log.warning("ignoring unreadable cache entry %s (%s); it will be rewritten", path, type(e).__name__)
      return None

  def _cache_write(self, key: str, request: Mapping[str, Any], completion: Completion) -> None:
    path = self._cache_path(key)
    if path is None:
      return
    entry = {"format": CACHE_FORMAT, "key": key, "request": dict(request), "response": {
        "text": completion.text, "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens, "finish_reason": completion.finish_reason}}
    folder = os.path.dirname(path)
    tmp = None
    try:
      os.makedirs(folder, exist_ok=True)
      fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
      with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(entry, f, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
      os.replace(tmp, path)
    except OSError as e:
      # the answer was paid for and is valid: losing it to a full disk would be worse than not caching it
      log.warning("could not write cache entry %s (%s: %s)", path, type(e).__name__, e.strerror)
      if tmp is not None and os.path.exists(tmp):
        os.remove(tmp)
