"""The OpenAI-compatible backend and the LLM agents against a fake server on a real local socket.

The fake server (`http.server` in a thread) answers `/v1/chat/completions` deterministically from the
request, counts requests in flight and can be scripted per request (status, headers, delay), so every
retry path runs over real HTTP through the `openai` client.
"""

import asyncio
import dataclasses
import email.utils
import json
import logging
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from emodistill_jax.negotiation.protocol import EmotionChoice, EpisodeContext
from emodistill_jax.agents.llm import (EmptyAnswerError, LLMCounterparty, LLMExtractor, LLMFocalAgent, LLMJudge,
                                       clean_reply)
from emodistill_jax.agents.openai_backend import (ApiKey, BackendConfig, BackendError, ChatBackend, Completion,
                                                  ConfigError, _retry_after, cache_key)
from emodistill_jax.domains import load_scenarios
from emodistill_jax.emotions import emotion_block
from emodistill_jax.negotiation.loop import Negotiation
from emodistill_jax.negotiation.records import Message

KEY_A = "sk-test-AAAA1111secret"
KEY_B = "sk-test-BBBB2222secret"
CHAT = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello"}]


def _user_text(body):
  return " ".join(m["content"] for m in body["messages"] if m["role"] == "user")


def echo_reply(body):
  return f"echo[{body['model']}|t={body.get('temperature')}]: {_user_text(body)[-40:]}"


class FakeServer:
  """An OpenAI-compatible chat endpoint. `script` holds per-request overrides, consumed in order:
  dicts with optional status, headers, delay (s), body (a dict, or a str sent verbatim)."""

  def __init__(self, reply=echo_reply):
    self.reply = reply
    self.script = []
    self.seen = []  # (authorization header, request body, arrival time)
    self.in_flight = 0
    self.max_in_flight = 0
    self.lock = threading.Lock()
    owner = self

    class Handler(BaseHTTPRequestHandler):
      def do_POST(self):
        owner.handle(self)

      def log_message(self, *args):
        pass

    self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    self.httpd.daemon_threads = True
    self.base_url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
    self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

  @property
  def hits(self):
    return len(self.seen)

  def handle(self, h):
    body = json.loads(h.rfile.read(int(h.headers.get("Content-Length", 0))))
    with self.lock:
      self.seen.append((h.headers.get("Authorization"), body, time.monotonic()))
      step = self.script.pop(0) if self.script else {}
      self.in_flight += 1
      self.max_in_flight = max(self.max_in_flight, self.in_flight)
    try:
      time.sleep(step.get("delay", 0))
      status = step.get("status", 200)
      if h.path != "/v1/chat/completions":
        status, payload = 404, {"error": {"message": f"no route {h.path}"}}
      elif "body" in step:
        payload = step["body"]
      elif status == 200:
        text = self.reply(body)
        prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
        payload = {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": body["model"],
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split()),
                             "total_tokens": prompt_tokens + len(text.split())}}
      else:
        payload = {"error": {"message": f"scripted {status}", "type": "fake"}}
      data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
      h.send_response(status)
      h.send_header("Content-Type", "application/json")
      h.send_header("Content-Length", str(len(data)))
      for k, v in step.get("headers", {}).items():
        h.send_header(k, v)
      h.end_headers()
      h.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
      pass  # the client gave up (timeout test)
    finally:
      with self.lock:
        self.in_flight -= 1


@pytest.fixture
def server():
  s = FakeServer()
  s.thread.start()
  yield s
  s.httpd.shutdown()
  s.httpd.server_close()


def config(server_or_url, **kw):
  base_url = server_or_url if isinstance(server_or_url, str) else server_or_url.base_url
  defaults = dict(base_url=base_url, model="fake-model", api_keys=[KEY_A], timeout=5.0, max_retries=3,
                  backoff_base=0.01, backoff_max=0.05)
  return BackendConfig(**{**defaults, **kw})


def run(coro_fn, cfg):
  """Builds a backend, runs `await coro_fn(backend)`, closes the backend; returns (result, backend)."""
  async def main():
    async with ChatBackend(cfg) as backend:
      return await coro_fn(backend), backend
  return asyncio.run(main())


def run_error(coro_fn, cfg):
  """Like `run` but expects a BackendError; returns (error, backend)."""
  holder = {}

  async def main():
    async with ChatBackend(cfg) as backend:
      holder["backend"] = backend
      with pytest.raises(BackendError) as info:
        await coro_fn(backend)
      return info.value
  return asyncio.run(main()), holder["backend"]


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------------
# Round trip, keys, retries.

def test_completion_round_trip_with_usage(server):
  cfg = config(server, temperature=0.3, max_tokens=17, extra_body={"enable_thinking": False})
  c, backend = run(lambda b: b.complete(CHAT, role="focal"), cfg)
  assert c == Completion(text="echo[fake-model|t=0.3]: Say hello", prompt_tokens=5, completion_tokens=3,
                         cached=False, finish_reason="stop")
  auth, body, _ = server.seen[0]
  assert auth == f"Bearer {KEY_A}"
  assert body["messages"] == CHAT and body["max_tokens"] == 17 and body["enable_thinking"] is False
  assert (backend.calls, backend.requests, backend.failures, dict(backend.retries)) == (1, 1, 0, {})
  assert backend.usage_by_role() == {
      "focal": {"calls": 1, "cache_hits": 0, "prompt_tokens": 5, "completion_tokens": 3}}


def test_keys_are_used_round_robin(server):
  cfg = config(server, api_keys=[KEY_A, KEY_B])

  async def four(b):
    for i in range(4):
      await b.complete([{"role": "user", "content": f"request {i}"}], role="focal")
  run(four, cfg)
  assert [auth for auth, _, _ in server.seen] == [f"Bearer {k}" for k in (KEY_A, KEY_B, KEY_A, KEY_B)]


def test_429_honours_retry_after(server):
  server.script = [{"status": 429, "headers": {"Retry-After": "1"}}]
  c, backend = run(lambda b: b.complete(CHAT, role="judge"), config(server))
  assert c.text.startswith("echo") and server.hits == 2
  assert server.seen[1][2] - server.seen[0][2] >= 0.95  # backoff alone would be <= 0.05 s
  assert dict(backend.retries) == {"rate_limit": 1} and backend.requests == 2


def test_5xx_twice_then_success(server):
  server.script = [{"status": 500}, {"status": 503}]
  c, backend = run(lambda b: b.complete(CHAT, role="focal"), config(server))
  assert c.text.startswith("echo") and server.hits == 3
  assert dict(backend.retries) == {"server_error": 2} and backend.failures == 0


def test_timeout_is_retried(server):
  server.script = [{"delay": 1.0}]
  c, backend = run(lambda b: b.complete(CHAT, role="focal"), config(server, timeout=0.3))
  assert c.text.startswith("echo") and server.hits == 2
  assert dict(backend.retries) == {"timeout": 1}


def test_retries_run_out(server):
  server.script = [{"status": 502}] * 3
  err, backend = run_error(lambda b: b.complete(CHAT, role="focal"), config(server, max_retries=2))
  assert "gave up after 3 attempts" in str(err) and "HTTP 502" in str(err)
  assert (err.status, err.cause, err.attempts) == (502, "server_error", 3)
  assert backend.failures == 1 and server.hits == 3


def test_401_is_not_retried_and_hides_the_key(server):
  # real servers echo (part of) the rejected key; the error must not
  server.script = [{"status": 401, "body": {"error": {"message": f"Incorrect API key provided: {KEY_A}"}}}]
  err, backend = run_error(lambda b: b.complete(CHAT, role="focal"), config(server))
  assert server.hits == 1 and backend.requests == 1 and not backend.retries
  assert "rejected API key #1 of 1" in str(err) and "EMODISTILL_API_KEYS" in str(err)
  assert (err.status, err.cause) == (401, "auth")
  assert KEY_A not in str(err) and KEY_A not in repr(err)
  assert err.__cause__ is None and err.__context__ is None  # nothing leads back to the request headers


def test_other_4xx_fails_at_once_with_the_server_message(server):
  server.script = [{"status": 400, "body": {"error": {"message": f"bad field, key was {KEY_A}"}}}]
  err, _ = run_error(lambda b: b.complete(CHAT, role="focal"), config(server))
  assert server.hits == 1 and err.cause == "client_error" and "HTTP 400" in str(err)
  assert "bad field" in str(err) and KEY_A not in str(err) and "***" in str(err)


def test_connection_refused_gives_a_clear_error():
  url = f"http://127.0.0.1:{_free_port()}/v1"
  err, backend = run_error(lambda b: b.complete(CHAT, role="focal"), config(url, max_retries=2))
  assert "could not connect" in str(err) and url in str(err) and "after 3 attempts" in str(err)
  assert err.cause == "connection" and err.status is None
  assert dict(backend.retries) == {"connection": 2} and backend.failures == 1


def test_a_response_without_choices_is_an_error_not_a_retry(server):
  server.script = [{"body": {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []}}]
  err, _ = run_error(lambda b: b.complete(CHAT, role="focal"), config(server))
  assert err.cause == "bad_response" and server.hits == 1


def test_a_truncated_json_body_is_retried_then_named(server):
  good = run(lambda b: b.complete(CHAT, role="focal"), config(server))[0].text
  server.script = [{"body": '{"id": "x", "object": "chat.compl'}]  # cut off in transit, once
  completion, backend = run(lambda b: b.complete(CHAT, role="focal", sample_key=1), config(server))
  assert completion.text == good and dict(backend.retries) == {"bad_response": 1}
  server.script = [{"body": '{"choices": [{"mess'}] * 3
  err, _ = run_error(lambda b: b.complete(CHAT, role="focal", sample_key=2), config(server, max_retries=2))
  assert err.cause == "bad_response" and "not valid JSON" in str(err) and server.base_url in str(err)
  assert "after 3 attempts" in str(err)


# ---------------------------------------------------------------------------------------------------
# Cache.

def _cache_files(folder):
  return [os.path.join(d, f) for d, _, files in os.walk(folder) for f in files]


def test_cache_replays_identical_requests_without_network(server, tmp_path):
  cfg = config(server, cache_dir=str(tmp_path))
  first, _ = run(lambda b: b.complete(CHAT, role="focal"), cfg)
  assert server.hits == 1
  files = _cache_files(tmp_path)
  assert len(files) == 1 and os.path.basename(os.path.dirname(files[0])) == os.path.basename(files[0])[:2]

  async def rerun(b):  # a new backend, as in a re-run of the whole sweep
    return await b.complete(CHAT, role="focal"), await b.complete(CHAT, role="focal")
  (again, twice), backend = run(rerun, cfg)
  assert server.hits == 1 and again.cached and twice.cached
  assert dataclasses.replace(again, cached=False) == first
  assert backend.cache_hits == 2 and backend.requests == 0
  assert backend.usage_by_role()["focal"] == {"calls": 2, "cache_hits": 2, "prompt_tokens": 0,
                                              "completion_tokens": 0}

  async def misses(b):
    await b.complete(CHAT, role="focal", temperature=0.0)
    await b.complete(CHAT, role="focal", sample_key="episode-2/0")
  run(misses, cfg)
  assert server.hits == 3 and len(_cache_files(tmp_path)) == 3


def test_cache_key_ignores_the_api_key(server, tmp_path):
  run(lambda b: b.complete(CHAT, role="focal"), config(server, cache_dir=str(tmp_path)))
  c, _ = run(lambda b: b.complete(CHAT, role="focal"), config(server, cache_dir=str(tmp_path), api_keys=[KEY_B]))
  assert c.cached and server.hits == 1


def test_failures_are_not_cached_and_corrupt_entries_are_misses(server, tmp_path):
  cfg = config(server, cache_dir=str(tmp_path))
  server.script = [{"status": 400}]
  run_error(lambda b: b.complete(CHAT, role="focal"), cfg)
  assert _cache_files(tmp_path) == []
  run(lambda b: b.complete(CHAT, role="focal"), cfg)
  (path,) = _cache_files(tmp_path)
  with open(path, "w") as f:
    f.write('{"format": 1, "resp')  # a torn file from some other writer
  c, _ = run(lambda b: b.complete(CHAT, role="focal"), cfg)
  assert not c.cached and server.hits == 3
  with open(path) as f:
    assert json.load(f)["response"]["text"] == c.text  # rewritten whole
  assert not [p for p in _cache_files(tmp_path) if ".tmp-" in p]


def test_cache_key_covers_the_whole_request():
  base = dict(base_url="http://h/v1", model="m", messages=CHAT, temperature=0.7, max_tokens=10,
              extra_body={"enable_thinking": False}, sample_key=None)
  keys = {cache_key(base)}
  for field, value in [("base_url", "http://other/v1"), ("model", "m2"), ("messages", CHAT[:1]),
                       ("temperature", 0.0), ("max_tokens", 11), ("extra_body", {}), ("sample_key", "e/1")]:
    keys.add(cache_key({**base, field: value}))
  assert len(keys) == 8
  assert cache_key(dict(reversed(list(base.items())))) == cache_key(base)


# ---------------------------------------------------------------------------------------------------
# Keys never leak.

def test_keys_never_appear_in_reprs_logs_errors_or_cache(server, tmp_path, caplog):
  caplog.set_level(logging.DEBUG)  # the openai / httpx debug records too
  cfg = config(server, api_keys=[KEY_A, KEY_B], cache_dir=str(tmp_path))
  server.script = [{"status": 429, "headers": {"Retry-After": "0"}},
                   {"status": 500, "body": {"error": {"message": f"oops {KEY_B}"}}}]
  seen = []

  async def work(b):
    seen.append(await b.complete(CHAT, role="focal"))
    seen.append(await b.complete(CHAT, role="focal"))  # cache hit
    server.script = [{"status": 401, "body": {"error": {"message": f"bad key {KEY_A}"}}}]
    try:
      await b.complete([{"role": "user", "content": "other"}], role="judge")
    except BackendError as e:
      seen.append(e)
    return b
  backend, _ = run(work, cfg)
  dead = BackendConfig(base_url=f"http://127.0.0.1:{_free_port()}/v1", model="m", api_keys=[KEY_A],
                       max_retries=1, backoff_base=0.0)
  err, _ = run_error(lambda b: b.complete(CHAT, role="focal"), dead)
  try:
    BackendConfig(base_url="", model="", api_keys=[KEY_A + " x"]).validate()
  except ConfigError as e:
    seen.append(e)
  texts = [repr(cfg), str(cfg), repr(cfg.api_keys), str(cfg.api_keys[0]), repr(backend), str(backend),
           json.dumps(cfg.to_json()), json.dumps(backend.stats()), repr(err), str(err), repr(err.args)]
  texts += [repr(x) + str(x) for x in seen]
  texts += [r.getMessage() + repr(r.args) for r in caplog.records]
  for path in _cache_files(tmp_path):
    with open(path, encoding="utf-8") as f:
      texts.append(f.read())
  assert len(caplog.records) > 5 and len(_cache_files(tmp_path)) == 1
  for key in (KEY_A, KEY_B, "AAAA1111", "BBBB2222"):
    assert not [t for t in texts if key in t], key
  with pytest.raises(TypeError):  # dumping the raw dataclass fails loudly instead of writing keys
    json.dumps(dataclasses.asdict(cfg))


# ---------------------------------------------------------------------------------------------------
# Configuration.

def test_from_env_reads_variables_and_set_fields_win():
  env = {"EMODISTILL_BASE_URL": "http://env/v1", "EMODISTILL_API_KEYS": f" {KEY_A}, {KEY_B},,",
         "EMODISTILL_MODEL": "env-model", "EMODISTILL_CACHE_DIR": "/tmp/c"}
  cfg = BackendConfig.from_env(environ=env).validate()
  assert (cfg.base_url, cfg.model, cfg.cache_dir) == ("http://env/v1", "env-model", "/tmp/c")
  assert [k.reveal() for k in cfg.api_keys] == [KEY_A, KEY_B]
  # None / "" / [] defer to the environment; a value given wins
  cfg = BackendConfig.from_env(environ=env, model="cfg-model", base_url=None, api_keys=[], temperature=0.0)
  assert (cfg.model, cfg.base_url, len(cfg.api_keys), cfg.temperature) == ("cfg-model", "http://env/v1", 2, 0.0)
  cfg = BackendConfig.from_env(environ={}, base_url="http://cfg/v1", api_keys=KEY_A, model="m").validate()
  assert cfg.api_keys == (ApiKey(KEY_A),)
  with pytest.raises(TypeError, match="no field.*modle"):
    BackendConfig.from_env(environ=env, modle="typo")


def test_from_env_uses_os_environ(monkeypatch):
  monkeypatch.setenv("JUDGE_BASE_URL", "https://judge/v1")
  monkeypatch.setenv("JUDGE_API_KEYS", KEY_A)
  monkeypatch.setenv("JUDGE_MODEL", "judge-model")
  cfg = BackendConfig.from_env("JUDGE").validate()
  assert cfg.model == "judge-model" and cfg.env_prefix == "JUDGE"


def test_validate_names_every_missing_variable():
  with pytest.raises(ConfigError) as info:
    BackendConfig.from_env(environ={}).validate()
  msg = str(info.value)
  for needed in ("EMODISTILL_BASE_URL", "EMODISTILL_API_KEYS", "EMODISTILL_MODEL", "base_url", "api_keys",
                 "model"):
    assert needed in msg
  with pytest.raises(ConfigError, match="JUDGE_MODEL") as info:
    BackendConfig.from_env("JUDGE", environ={"JUDGE_BASE_URL": "http://x/v1", "JUDGE_API_KEYS": "k"}).validate()
  assert "BASE_URL" not in str(info.value) and "API_KEYS" not in str(info.value)
  with pytest.raises(ConfigError, match="must start with http"):
    BackendConfig(base_url="localhost:8000/v1", model="m", api_keys="k").validate()
  with pytest.raises(ConfigError, match="max_concurrency"):
    BackendConfig(base_url="http://x/v1", model="m", api_keys="k", max_concurrency=0).validate()


def test_an_invalid_config_fails_before_any_request(server):
  with pytest.raises(ConfigError, match="EMODISTILL_MODEL"):
    ChatBackend(config(server, model=""))
  assert server.hits == 0


# ---------------------------------------------------------------------------------------------------
# Concurrency.

def test_concurrency_bound_is_respected(server):
  server.script = [{"delay": 0.15}] * 8

  async def many(b):
    return await asyncio.gather(*(b.complete([{"role": "user", "content": f"q{i}"}], role="counterparty")
                                  for i in range(8)))
  results, backend = run(many, config(server, max_concurrency=3))
  assert len(results) == 8 and server.hits == 8
  assert 1 < server.max_in_flight <= 3  # the bound holds, and requests did overlap
  assert backend.usage_by_role()["counterparty"]["calls"] == 8


# ---------------------------------------------------------------------------------------------------
# LLM agents.

def role_reply(body):
  """Answers by the prompt's role: judge, extractor, focal (crad creditor), counterparty (debtor)."""
  system = body["messages"][0]["content"]
  if "negotiation judge" in system:
    return "SCORE: 8"
  if "Answer with exactly one line: OFFER:" in system:
    return "OFFER: 45"
  if "You are the creditor" in system:
    return "  Creditor: I propose 20 days to repay the balance.\nDebtor: fine  "
  return "**Debtor:** I accept your offer of 20 days."


@pytest.fixture
def crad():
  scenario = load_scenarios("crad")[0]
  return EpisodeContext(scenario=scenario, seed=3, episode_id="ep-1")


class FixedSelector:
  async def choose(self, ctx, messages):
    return EmotionChoice("gratitude")


def test_llm_agents_run_an_episode_via_the_server(server, crad):
  server.reply = role_reply

  async def episode(b):
    negotiation = Negotiation(focal=LLMFocalAgent(b), selector=FixedSelector(), counterparty=LLMCounterparty(b),
                              extractor=LLMExtractor(b))
    ep = await negotiation.run(crad)
    score = await LLMJudge(b).score(crad, ep.messages, 0)
    return ep, score
  (ep, score), backend = run(episode, config(server))
  assert [m.text for m in ep.messages] == ["I propose 20 days to repay the balance.",
                                           "I accept your offer of 20 days."]
  assert ep.outcome == "accepted" and ep.final_value == 20.0
  assert ep.models == {"focal": "fake-model", "counterparty": "fake-model"}
  assert score == (8, True)
  focal_body = server.seen[0][1]
  assert emotion_block("gratitude") in focal_body["messages"][1]["content"]
  judge_body = server.seen[-1][1]
  assert judge_body["temperature"] == 0.0 and judge_body["max_tokens"] == 64
  assert set(backend.usage_by_role()) == {"focal", "counterparty", "judge"}  # the parser found both offers


def test_judge_flags_unreadable_scores_and_rejects_non_focal_turns(server, crad):
  server.reply = lambda body: "Quite good, between 6 and 7."
  msgs = [Message("focal", "I propose 20 days."), Message("counterparty", "No.")]
  score, _ = run(lambda b: LLMJudge(b).score(crad, msgs, 0), config(server))
  assert score == (5, False)
  with pytest.raises(ValueError, match="focal messages only"):
    run(lambda b: LLMJudge(b).score(crad, msgs, 1), config(server))


def test_extractor_uses_the_parser_first_and_the_llm_only_when_needed(server):
  server.reply = role_reply

  async def extract(b):
    x = LLMExtractor(b)
    found = [await x.extract("I propose 30 days.", "crad"),
             await x.extract("Let us settle on what my accountant suggested.", "crad"),
             await x.extract("   ", "crad")]
    return found, x
  (found, x), backend = run(extract, config(server))
  assert found == [30.0, 45.0, None]
  assert (x.parser_hits, x.llm_calls, x.llm_hits) == (1, 1, 1)
  assert server.hits == 1 and "my accountant suggested" in _user_text(server.seen[0][1])
  assert server.seen[0][1]["temperature"] == 0.0
  assert backend.usage_by_role()["extractor"]["calls"] == 1


def test_empty_answers_are_retried_under_new_sample_keys_then_raise(server, crad, tmp_path):
  server.reply = lambda body: "   "
  cfg = config(server, cache_dir=str(tmp_path))
  with pytest.raises(EmptyAnswerError, match="focal model 'fake-model' gave an empty answer 3 time"):
    run(lambda b: LLMFocalAgent(b).speak(crad, [], "joy"), cfg)
  assert server.hits == 3
  # a later non-empty sample is used, and a re-run replays the same sequence from the cache
  answers = iter(["", "Creditor: 25 days, final."])
  server.reply = lambda body: next(answers)
  text, _ = run(lambda b: LLMFocalAgent(b).speak(crad, [], "anger"), cfg)
  assert text == "25 days, final." and server.hits == 5
  again, _ = run(lambda b: LLMFocalAgent(b).speak(crad, [], "anger"), cfg)
  assert again == text and server.hits == 5


def test_episodes_sample_independently_but_rerun_from_cache(server, crad, tmp_path):
  cfg = config(server, cache_dir=str(tmp_path))
  other = dataclasses.replace(crad, episode_id="ep-2")
  run(lambda b: LLMFocalAgent(b).speak(crad, [], "joy"), cfg)
  run(lambda b: LLMFocalAgent(b).speak(other, [], "joy"), cfg)
  run(lambda b: LLMFocalAgent(b).speak(crad, [], "joy"), cfg)
  assert server.hits == 2


def test_clean_reply():
  assert clean_reply("<think>hmm</think>\n Creditor: 20 days.", "creditor", "debtor") == "20 days."
  assert clean_reply("**Creditor**: 20 days.\n\nDebtor: no", "creditor", "debtor") == "20 days."
  assert clean_reply("The debtor: a partner.", "creditor", "debtor") == "The debtor: a partner."
  assert clean_reply("Rescue coordinator: hold on.", "rescue coordinator", "survivor") == "hold on."
  assert clean_reply("Creditor-friendly terms: 20 days.", "creditor", "debtor") == "Creditor-friendly terms: 20 days."


def test_retry_after_forms():
  assert _retry_after({"retry-after": "2"}) == 2.0
  assert _retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
  soon = email.utils.formatdate(time.time() + 30, usegmt=True)
  assert 28 <= _retry_after({"retry-after": soon}) <= 31
  assert _retry_after({"retry-after": "soon"}) is None and _retry_after({}) is None


def test_an_unwritable_cache_does_not_lose_the_answer(server, tmp_path, caplog):
  blocker = tmp_path / "not-a-folder"
  blocker.write_text("")
  c, _ = run(lambda b: b.complete(CHAT, role="focal"), config(server, cache_dir=str(blocker)))
  assert c.text.startswith("echo") and "could not write cache entry" in caplog.text


# ---------------------------------------------------------------------------------------------------
# The focal decoder: top-p and cut-off turns.

def test_top_p_is_sent_and_cached_only_when_set(server, tmp_path):
  run(lambda b: b.complete(CHAT, role="focal"), config(server, top_p=0.9))
  run(lambda b: b.complete(CHAT, role="focal"), config(server))
  assert server.seen[0][1]["top_p"] == 0.9 and "top_p" not in server.seen[1][1]
  base = {"base_url": "u", "model": "m", "messages": CHAT, "temperature": 0.7, "max_tokens": 8, "extra_body": {},
          "sample_key": None}
  assert cache_key(base) != cache_key({**base, "top_p": 0.9})  # another decoder, another sample
  with pytest.raises(ConfigError, match="top_p must be in"):
    config(server, top_p=0.0).validate()


def test_a_focal_turn_cut_at_max_tokens_is_recorded_as_truncated(server, crad):
  cut = {"id": "x", "object": "chat.completion", "created": 0, "model": "fake-model",
         "choices": [{"index": 0, "message": {"role": "assistant", "content": "I propose 20 days to"},
                      "finish_reason": "length"}], "usage": {"prompt_tokens": 3, "completion_tokens": 5}}
  server.script = [{"body": cut}]
  server.reply = role_reply

  async def episode(b):
    negotiation = Negotiation(focal=LLMFocalAgent(b), selector=FixedSelector(), counterparty=LLMCounterparty(b),
                              extractor=LLMExtractor(b))
    return await negotiation.run(crad)
  ep, _ = run(episode, config(server))
  focal = [m for m in ep.messages if m.speaker == "focal"]
  assert [m.truncated for m in focal] == [True] + [False] * (len(focal) - 1)
  line = ep.to_json()
  assert line["messages"][0]["truncated"] is True and "truncated" not in line["messages"][1]
  assert [m.truncated for m in type(ep).from_json(line).messages] == [m.truncated for m in ep.messages]
