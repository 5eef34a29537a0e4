"""The OpenAI-compatible server end to end, offline: a tiny random Qwen2 (transformers `save_pretrained`)
with a tiny ChatML BPE tokenizer in the same folder, served in-process on a free port and called with the
`openai` client and raw HTTP; plus the launcher's smoke preset in a subprocess."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import jax
import numpy as np
import openai
import pytest
import torch
import transformers

from emodistill_jax.lm import generate, init_lora, load_peft_adapter, load_pretrained, save_peft_adapter
from emodistill_jax.lm.tokenizer import build_bpe_tokenizer, encode_chat, end_of_turn_ids
from emodistill_jax.serving import APIError, parse_chat_request, start_server
from emodistill_jax.serving import engine as engine_module
from emodistill_jax.serving.engine import finish

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "test-key"
NEW = 12
MESSAGES = [{"role": "system", "content": "You negotiate a payment plan."},
            {"role": "user", "content": "Can you pay in 30 days?"}]
CORPUS = ["I can offer 30 days for the payment, and that is fair for both of us.",
          "We need the team here in 45 minutes; the survivors cannot wait.",
          "Thank you. Let us agree on this plan and move forward together."] * 4


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  """(model folder, adapter folder, tokenizer, LanguageModel, LoRA)."""
  folder = tmp_path_factory.mktemp("tiny_chat")
  tokenizer = build_bpe_tokenizer(CORPUS, 300, folder, min_frequency=1)
  cfg = transformers.Qwen2Config(
      vocab_size=len(tokenizer), hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
      num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=False,
      eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
  torch.manual_seed(0)
  hf = transformers.Qwen2ForCausalLM(cfg)
  with torch.no_grad():
    for p in hf.parameters():
      p.normal_(0, 0.2)  # far from flat logits, so the greedy answer is not one repeated token
    # lone non-ASCII bytes decode to U+FFFD: a zero head row (logit 0) keeps them out of greedy answers,
    # so that different tokens mean different text
    partial = [i for i in range(len(tokenizer)) if "\ufffd" in tokenizer.decode([i])]
    hf.lm_head.weight[partial] = 0.0
  hf.save_pretrained(folder)
  model = load_pretrained(folder, dtype="float32")
  lora = init_lora(model.config, jax.random.key(2), rank=4, b_init_std=0.1)
  adapter = tmp_path_factory.mktemp("adapters") / "tiny-lora"
  save_peft_adapter(lora, adapter, model)
  return str(folder), str(adapter), tokenizer, model, load_peft_adapter(adapter, model)


@pytest.fixture(scope="module")
def server(tiny):
  folder, adapter, *_ = tiny
  handle = start_server(model=folder, adapter=adapter, model_name="tiny", dtype="float32", port=0, api_key=KEY,
                        max_prompt_tokens=64, max_new_tokens=24, max_request_bytes=16_384, warmup=False)
  yield handle
  handle.stop()


def client(handle, key=KEY):
  return openai.OpenAI(base_url=handle.base_url, api_key=key, max_retries=0, timeout=60)


def http(url, body=None, key=KEY, data=None):
  """(status, headers, decoded JSON body) of a GET (no body) or POST."""
  if body is not None:
    data = json.dumps(body).encode()
  request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
  if key:
    request.add_header("Authorization", f"Bearer {key}")
  try:
    with urllib.request.urlopen(request, timeout=60) as r:
      return r.status, dict(r.headers), json.loads(r.read())
  except urllib.error.HTTPError as e:
    return e.code, dict(e.headers), json.loads(e.read())


def direct(tiny, max_new, lora=None):
  """The greedy answer computed with `generate` on the encoded chat: (text, finish, completion tokens, prompt)."""
  _, _, tokenizer, model, _ = tiny
  prompt = encode_chat(tokenizer, MESSAGES)
  stops = end_of_turn_ids(tokenizer)
  out = generate(model, np.array([prompt], np.int32), max_new, temperature=0.0, lora=lora, stop_tokens=stops,
                 pad_token_id=tokenizer.pad_token_id)[0, len(prompt):]
  cut = next((i for i, t in enumerate(out) if t in stops), None)
  body = out if cut is None else out[:cut]
  text = tokenizer.decode(body, skip_special_tokens=True)
  return text, "length" if cut is None else "stop", len(out) if cut is None else cut + 1, prompt


def assert_error(status, body, want_status, code=None, param=None):
  assert status == want_status, body
  assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
  assert body["error"]["message"] and "Traceback" not in body["error"]["message"]
  if code is not None:
    assert body["error"]["code"] == code, body
  if param is not None:
    assert body["error"]["param"] == param, body


def test_models_lists_base_and_adapter(server):
  models = client(server).models.list()
  assert [m.id for m in models.data] == ["tiny", "tiny-lora"]
  status, _, body = http(server.url + "/v1/models/tiny-lora")
  assert status == 200 and body["parent"] == "tiny" and body["object"] == "model"


def test_greedy_chat_equals_generate_and_counts_usage(server, tiny):
  response = client(server).chat.completions.create(model="tiny", messages=MESSAGES, temperature=0, max_tokens=NEW)
  text, finish_reason, completion_tokens, prompt = direct(tiny, NEW)
  assert text.strip(), "the tiny model should say something"
  choice = response.choices[0]
  assert (choice.index, choice.message.role, choice.message.content, choice.finish_reason) == (
      0, "assistant", text, finish_reason)
  assert response.object == "chat.completion" and response.id.startswith("chatcmpl-") and response.model == "tiny"
  assert (response.usage.prompt_tokens, response.usage.completion_tokens, response.usage.total_tokens) == (
      len(prompt), completion_tokens, len(prompt) + completion_tokens)


def test_streaming_concatenates_to_the_same_text(server, tiny):
  stream = client(server).chat.completions.create(model="tiny", messages=MESSAGES, temperature=0, max_tokens=NEW,
                                                  stream=True, stream_options={"include_usage": True})
  chunks = list(stream)
  assert all(c.object == "chat.completion.chunk" for c in chunks) and len({c.id for c in chunks}) == 1
  text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
  reasons = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
  want, want_reason, completion_tokens, _ = direct(tiny, NEW)
  assert text == want and reasons == [want_reason]
  assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1  # really in pieces
  assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == completion_tokens


def test_raw_stream_ends_with_done(server):
  request = urllib.request.Request(server.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                                   data=json.dumps({"model": "tiny", "messages": MESSAGES, "max_tokens": 4,
                                                    "stream": True, "temperature": 0}).encode())
  with urllib.request.urlopen(request, timeout=60) as r:
    assert r.headers["Content-Type"].startswith("text/event-stream")
    events = [line for line in r.read().decode().split("\n\n") if line]
  assert events[-1] == "data: [DONE]" and all(e.startswith("data: ") for e in events)
  assert json.loads(events[0][6:])["choices"][0]["delta"] == {"role": "assistant", "content": ""}


def test_stop_strings_and_seeded_sampling(server, tiny):
  full, *_ = direct(tiny, NEW)
  stop = full[len(full) // 2:len(full) // 2 + 2]
  c = client(server)
  response = c.chat.completions.create(model="tiny", messages=MESSAGES, temperature=0, max_tokens=NEW, stop=[stop])
  assert response.choices[0].message.content == full[:full.find(stop)]
  assert response.choices[0].finish_reason == "stop" and response.usage.completion_tokens <= NEW
  sampled = [c.chat.completions.create(model="tiny", messages=MESSAGES, temperature=1.0, top_p=0.9, seed=seed,
                                       max_completion_tokens=NEW).choices[0].message.content for seed in (3, 3, 4)]
  assert sampled[0] == sampled[1] != sampled[2]


def test_lora_adapter_changes_the_answer(server, tiny):
  c = client(server)
  base = c.chat.completions.create(model="tiny", messages=MESSAGES, temperature=0, max_tokens=NEW)
  tuned = c.chat.completions.create(model="tiny-lora", messages=MESSAGES, temperature=0, max_tokens=NEW)
  assert tuned.model == "tiny-lora"
  assert tuned.choices[0].message.content != base.choices[0].message.content
  assert tuned.choices[0].message.content == direct(tiny, NEW, lora=tiny[4])[0]


def test_api_key_is_required(server):
  status, _, body = http(server.url + "/v1/models", key=None)
  assert_error(status, body, 401, "invalid_api_key")
  status, _, body = http(server.url + "/v1/chat/completions", {"model": "tiny", "messages": MESSAGES}, key="wrong")
  assert_error(status, body, 401, "invalid_api_key")
  assert "wrong" not in body["error"]["message"]
  with pytest.raises(openai.AuthenticationError):
    client(server, key="wrong").models.list()


@pytest.mark.parametrize("body, status, code, param", [
    (b"{not json", 400, "invalid_json", None),
    ([1, 2], 400, None, None),
    ({"model": "tiny"}, 400, None, "messages"),
    ({"model": "tiny", "messages": []}, 400, None, "messages"),
    ({"model": "tiny", "messages": [{"role": "wizard", "content": "hi"}]}, 400, None, "messages[0].role"),
    ({"model": "tiny", "messages": [{"role": "user"}]}, 400, None, "messages[0].content"),
    ({"messages": MESSAGES}, 400, None, "model"),
    ({"model": "gpt-nope", "messages": MESSAGES}, 404, "model_not_found", "model"),
    ({"model": "tiny", "messages": MESSAGES, "max_tokens": -1}, 400, None, "max_tokens"),
    ({"model": "tiny", "messages": MESSAGES, "max_tokens": 25}, 400, None, "max_tokens"),
    ({"model": "tiny", "messages": MESSAGES, "max_tokens": "8"}, 400, None, "max_tokens"),
    ({"model": "tiny", "messages": MESSAGES, "n": 2}, 400, None, "n"),
    ({"model": "tiny", "messages": MESSAGES, "temperature": 3}, 400, None, "temperature"),
    (b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', 400, None,
     "temperature"),
    (b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "top_p": NaN}', 400, None, "top_p"),
    (b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "top_p": Infinity}', 400, None, "top_p"),
    ({"model": "tiny", "messages": MESSAGES, "stop": ["a", ""]}, 400, None, "stop"),
    ({"model": "tiny", "messages": MESSAGES, "tools": [{"type": "function"}]}, 400, None, "tools"),
    ({"model": "tiny", "messages": [{"role": "user", "content": "offer " * 80}]}, 413, "context_length_exceeded",
     "messages"),
    ({"model": "tiny", "messages": [{"role": "user", "content": "x" * 20_000}]}, 413, "request_too_large", None),
])
def test_invalid_requests_get_openai_errors(server, body, status, code, param):
  url = server.url + "/v1/chat/completions"
  got, _, answer = http(url, data=body) if isinstance(body, bytes) else http(url, body)
  assert_error(got, answer, status, code, param)


def test_unknown_route_and_method(server):
  assert http(server.url + "/health", key=None)[0] == 200  # outside /v1: no key needed
  assert_error(*http(server.url + "/v1/embeddings", {"input": "x"})[::2], 404)
  assert_error(*http(server.url + "/v1/chat/completions")[::2], 405)


def test_internal_error_is_500_without_details(server, monkeypatch):
  def broken(*args, **kwargs):
    raise RuntimeError("secret detail from deep inside")
  monkeypatch.setattr(engine_module, "generate", broken)
  status, _, body = http(server.url + "/v1/chat/completions", {"model": "tiny", "messages": MESSAGES, "max_tokens": 2})
  assert_error(status, body, 500, "internal_error")
  assert "secret" not in json.dumps(body)


def test_fault_injection_answers_some_429_and_500(tiny):
  folder, *_ = tiny
  with start_server(model=folder, model_name="tiny", dtype="float32", port=0, warmup=False, fault_error_rate=0.3,
                    fault_latency_ms=(1, 5), fault_seed=0, language_model=tiny[3], chat_tokenizer=tiny[2]) as handle:
    results = [http(handle.url + "/v1/chat/completions", {"model": "tiny", "messages": MESSAGES,
                                                          "max_tokens": 1}, key=None) for _ in range(30)]
  statuses = [status for status, _, _ in results]
  assert {429, 500, 200} == set(statuses) and 3 <= statuses.count(200) and statuses.count(200) <= 27
  for status, headers, body in results:
    if status == 429:
      assert_error(status, body, 429, "rate_limit_exceeded")
      assert headers["Retry-After"] == "1"
    elif status == 500:
      assert_error(status, body, 500)
      assert body["error"]["type"] == "server_error"


class BlockingGenerate:
  """Stands in for `generate` in the engine: waits for `release` before generating, to hold the worker."""

  def __init__(self):
    self.entered, self.release, self.batch_sizes = threading.Event(), threading.Event(), []

  def __call__(self, model, ids, *args, **kwargs):
    self.batch_sizes.append(int(ids.shape[0]))
    self.entered.set()
    assert self.release.wait(60)
    return generate(model, ids, *args, **kwargs)


def _post_in_thread(handle, results, max_tokens=NEW):
  def call():
    results.append(http(handle.url + "/v1/chat/completions", {"model": "tiny", "messages": MESSAGES,
                                                              "max_tokens": max_tokens, "temperature": 0}, key=None))
  thread = threading.Thread(target=call)
  thread.start()
  return thread


def _wait(predicate, timeout=30.0):
  deadline = time.time() + timeout
  while not predicate():
    assert time.time() < deadline, "timed out"
    time.sleep(0.01)


def test_queue_full_is_429_and_queued_greedy_requests_share_a_batch(tiny, monkeypatch):
  blocking = BlockingGenerate()
  monkeypatch.setattr(engine_module, "generate", blocking)
  with start_server(model=tiny[0], model_name="tiny", dtype="float32", port=0, warmup=False, queue_size=2,
                    max_batch_size=4, language_model=tiny[3], chat_tokenizer=tiny[2]) as handle:
    results = []
    threads = [_post_in_thread(handle, results)]
    assert blocking.entered.wait(60)  # the worker holds request 1
    threads += [_post_in_thread(handle, results, max_tokens=n) for n in (NEW, 5)]
    _wait(lambda: handle.engine.pending == 2)
    status, headers, body = http(handle.url + "/v1/chat/completions", {"model": "tiny", "messages": MESSAGES},
                                 key=None)
    assert_error(status, body, 429, "rate_limit_exceeded")
    assert headers["Retry-After"] == "1"
    blocking.release.set()
    for t in threads:
      t.join(60)
  assert blocking.batch_sizes == [1, 2]  # the two queued greedy requests ran as one batch
  assert [s for s, _, _ in results] == [200, 200, 200]
  answers = sorted(b["choices"][0]["message"]["content"] for _, _, b in results)
  assert answers == sorted([direct(tiny, NEW)[0]] * 2 + [direct(tiny, 5)[0]])


def test_stop_finishes_in_flight_requests_and_refuses_new_connections(tiny, monkeypatch):
  blocking = BlockingGenerate()
  monkeypatch.setattr(engine_module, "generate", blocking)
  handle = start_server(model=tiny[0], model_name="tiny", dtype="float32", port=0, warmup=False, language_model=tiny[3],
                        chat_tokenizer=tiny[2])
  results = []
  request = _post_in_thread(handle, results)
  assert blocking.entered.wait(60)
  stopper = threading.Thread(target=handle.stop)
  stopper.start()

  def refused():
    try:
      socket.create_connection(("127.0.0.1", handle.port), timeout=1).close()
      return False
    except ConnectionRefusedError:
      return True
  _wait(refused)
  blocking.release.set()
  request.join(60)
  stopper.join(60)
  assert not stopper.is_alive() and results[0][0] == 200
  assert results[0][2]["choices"][0]["message"]["content"] == direct(tiny, NEW)[0]


def test_parse_chat_request_maps_fields():
  parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
  req = parse_chat_request({"model": "m", "messages": [{"role": "developer", "content": parts}], "max_tokens": 3,
                            "max_completion_tokens": 5, "stop": "x", "seed": 7, "n": 1}, 10)
  assert req.messages == [{"role": "system", "content": "ab"}]
  assert (req.max_tokens, req.stop, req.seed, req.temperature, req.stream) == (5, ("x",), 7, 1.0, False)
  with pytest.raises(APIError) as e:
    parse_chat_request({"model": "m", "messages": [{"role": "user", "content": "a"}], "temperature": True}, 10)
  assert e.value.status == 400 and e.value.param == "temperature"


def test_finish_pieces_concatenate_to_the_text():
  # a two-byte character split over two tokens (ids 1, 2) comes out with the token that completes it
  table = {1: b"\xc3", 2: b"\xa9", 3: b"ab", 4: b"c"}
  decode = lambda ids: b"".join(table[i] for i in ids).decode("utf-8", errors="replace")
  text, reason, count, pieces = finish(decode, [3, 1, 2, 4, 9, 4], stop_ids=[9], pieces=True)
  assert (text, reason, count, pieces) == ("abéc", "stop", 5, ("ab", "", "é", "c"))
  text, reason, count, pieces = finish(decode, [3, 1, 2, 4, 3], stop_ids=[9], stop_strings=["ca"], pieces=True)
  assert (text, reason, count, "".join(pieces)) == ("abé", "stop", 5, "abé")
  assert finish(decode, [3, 4], stop_ids=[9])[:3] == ("abc", "length", 2)


def test_launcher_smoke_serves_and_stops_on_sigterm(tmp_path):
  process = subprocess.Popen([sys.executable, "-m", "launchers.serve", "--config=configs/serve.py:smoke",
                              f"--workdir={tmp_path}"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
  try:
    _wait(lambda: (tmp_path / "server.json").exists() or process.poll() is not None, timeout=120)
    assert process.poll() is None, process.stderr.read()[-3000:]
    info = json.loads((tmp_path / "server.json").read_text())
    status, _, body = http(info["base_url"] + "/chat/completions",
                           {"model": info["models"][0], "messages": MESSAGES, "max_tokens": 4}, key=None)
    assert status == 200 and body["usage"]["completion_tokens"] <= 4
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
  finally:
    if process.poll() is None:
      process.kill()
  assert process.returncode == 0, err[-3000:]
  assert "serving tiny_model at http://127.0.0.1:" in out and "server stopped" in out


@pytest.mark.parametrize("host, keys, warns", [
    ("127.0.0.1", (), False), ("localhost", (), False), ("::1", (), False), ("0.0.0.0", ("k",), False),
    ("0.0.0.0", (), True), ("::", (), True), ("10.1.2.3", (), True)])
def test_binding_beyond_loopback_without_a_key_warns(host, keys, warns):
  from emodistill_jax.serving.server import exposure_warning
  warning = exposure_warning(host, keys)
  assert (warning is not None) == warns
  if warns:
    assert warning.startswith(f"serving on {host} with no API key") and "host=127.0.0.1" in warning
