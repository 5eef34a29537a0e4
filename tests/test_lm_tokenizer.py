"""Chat rendering, encoding and supervised examples on a tiny ChatML BPE tokenizer trained here."""

from __future__ import annotations

import os
import random
import shutil

import pytest

from emodistill_jax.lm.tokenizer import (TokenizerError, build_bpe_tokenizer, build_example, chatml_template,
                                         encode_chat, end_of_turn_ids, load_tokenizer, render_chat)

WORDS = ("the buyer seller offer price deal we can accept your final counter lower higher fair market value "
         "budget hospital supplies shipment delivery week dollars per unit I will not go below that").split()
SYSTEM = {"role": "system", "content": "You negotiate for the supplier."}
USER = {"role": "user", "content": "We offer 120 dollars per unit."}
RESPONSE = "I can accept 135 dollars per unit, delivered next week."


def sentences(n: int, seed: int = 0) -> list[str]:
  rng = random.Random(seed)
  return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 14))) + rng.choice([".", "?", "!"])
          + f" {rng.randint(1, 999)}" for _ in range(n)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
  path = tmp_path_factory.mktemp("chatml_tok")
  build_bpe_tokenizer(sentences(48), vocab_size=400, folder=path)
  return path


@pytest.fixture(scope="module")
def tok(folder):
  return load_tokenizer(folder)


def ids(tok, text: str) -> list[int]:
  return tok(text, add_special_tokens=False)["input_ids"]


def test_folder_loads_offline_with_chatml_specials(folder, tok):
  assert {"tokenizer.json", "tokenizer_config.json"} <= set(os.listdir(folder))
  assert tok.convert_ids_to_tokens([0, 1, 2]) == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
  assert (tok.eos_token, tok.pad_token) == ("<|im_end|>", "<|endoftext|>")
  assert ids(tok, "<|im_start|>user\n")[0] == 1  # special tokens are never split into bytes
  text = "Ünïcode, emoji 🤝 and unseen words: zyxw 2026\n\n  tabs\t."
  assert tok.decode(ids(tok, text)) == text  # byte level: any text round-trips


def test_render_chat_is_qwen_chatml(tok):
  assert render_chat(tok, [SYSTEM, USER]) == (
      "<|im_start|>system\nYou negotiate for the supplier.<|im_end|>\n"
      "<|im_start|>user\nWe offer 120 dollars per unit.<|im_end|>\n"
      "<|im_start|>assistant\n")
  # like Qwen2-Instruct: a default system message when the chat has none, no generation prompt on request
  assert render_chat(tok, [USER], add_generation_prompt=False) == (
      "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
      "<|im_start|>user\nWe offer 120 dollars per unit.<|im_end|>\n")


def test_chatml_template_without_default_system():
  from jinja2 import Template
  text = Template(chatml_template(None)).render(messages=[USER], add_generation_prompt=True)
  assert text == "<|im_start|>user\nWe offer 120 dollars per unit.<|im_end|>\n<|im_start|>assistant\n"
  quoted = Template(chatml_template("It's a \\ test")).render(messages=[USER], add_generation_prompt=False)
  assert quoted.startswith("<|im_start|>system\nIt's a \\ test<|im_end|>\n")


def test_encode_chat_equals_tokenizing_the_rendered_text(tok):
  for chat in ([SYSTEM, USER], [USER], [SYSTEM, USER, {"role": "assistant", "content": "No."}, USER]):
    for gen in (True, False):
      assert encode_chat(tok, chat, gen) == ids(tok, render_chat(tok, chat, gen))


def test_end_of_turn_ids(tok):
  assert end_of_turn_ids(tok) == [2, 0]  # eos <|im_end|>, then <|endoftext|>; no <|eot_id|> in this vocab


@pytest.mark.parametrize("history", [[SYSTEM, USER], [USER],
                                     [SYSTEM, USER, {"role": "assistant", "content": "No, 150."}, USER]])
def test_build_example_masks_exactly_the_response_and_end_of_turn(tok, history):
  ex = build_example(tok, history, RESPONSE)
  assert not ex.truncated and len(ex.input_ids) == len(ex.loss_mask)
  prompt = encode_chat(tok, history)
  assert ex.input_ids[:len(prompt)] == prompt and ex.prompt_length == len(prompt)
  assert ex.loss_mask == [0] * len(prompt) + [1] * (len(ex.input_ids) - len(prompt))
  assert tok.decode([t for t, m in zip(ex.input_ids, ex.loss_mask) if m]) == RESPONSE + "<|im_end|>"
  assert ex.input_ids[-1] == tok.convert_tokens_to_ids("<|im_end|>")
  # the whole conversation as the template renders it: same ids up to the end-of-turn, then only "\n"
  full = ids(tok, render_chat(tok, history + [{"role": "assistant", "content": RESPONSE}], False))
  assert full[:len(ex.input_ids)] == ex.input_ids
  assert tok.decode(full[len(ex.input_ids):]) == "\n"


def test_left_truncation_keeps_the_response_and_flags_it(tok):
  history = [USER, {"role": "assistant", "content": "No."}, USER]  # no system message: plain left cut
  whole = build_example(tok, history, RESPONSE)
  completion = sum(whole.loss_mask)
  ex = build_example(tok, history, RESPONSE, max_length=completion + 10)
  assert ex.truncated and len(ex.input_ids) == completion + 10
  assert ex.input_ids == whole.input_ids[-(completion + 10):]  # the earliest prompt tokens went
  assert ex.loss_mask == [0] * 10 + [1] * completion
  # fitting examples are untouched
  assert build_example(tok, history, RESPONSE, max_length=len(whole.input_ids)) == whole


def test_truncation_keeps_a_leading_system_message(tok):
  long_user = {"role": "user", "content": " ".join(sentences(6, seed=1))}
  history = [SYSTEM, long_user]
  whole = build_example(tok, history, RESPONSE)
  head = encode_chat(tok, [SYSTEM], add_generation_prompt=False)
  max_length = len(whole.input_ids) - 20
  ex = build_example(tok, history, RESPONSE, max_length=max_length)
  assert ex.truncated and len(ex.input_ids) == max_length
  assert ex.input_ids[:len(head)] == head  # the instructions survive ...
  assert ex.input_ids[len(head):] == whole.input_ids[len(head) + 20:]  # ... the start of the user turn goes
  assert sum(ex.loss_mask) == sum(whole.loss_mask)
  # when the system message would take more than half of the prompt's room, fall back to a plain left cut: the end
  # of the conversation (the sandbox student's offers and style blocks) matters more in a short window
  for prompt_room in (len(head), 2 * len(head) - 1):
    tight = sum(whole.loss_mask) + prompt_room
    ex = build_example(tok, history, RESPONSE, max_length=tight)
    assert ex.truncated and ex.input_ids == whole.input_ids[-tight:]
  ex = build_example(tok, history, RESPONSE, max_length=sum(whole.loss_mask) + 2 * len(head))
  assert ex.input_ids[:len(head)] == head  # exactly half: kept


def test_response_longer_than_max_length_is_an_error(tok):
  completion = sum(build_example(tok, [USER], RESPONSE).loss_mask)
  with pytest.raises(TokenizerError, match="max_length"):
    build_example(tok, [USER], RESPONSE, max_length=completion)


def test_suffix_is_derived_from_a_non_chatml_template(tok):
  """Another template: the end-of-turn is what it writes after the response (here <|endoftext|>)."""
  other = load_tokenizer(tok.name_or_path)
  other.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|endoftext|>"
                         "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
  ex = build_example(other, [USER], RESPONSE)
  assert other.decode([t for t, m in zip(ex.input_ids, ex.loss_mask) if m]) == RESPONSE + "<|endoftext|>"
  full = ids(other, render_chat(other, [USER, {"role": "assistant", "content": RESPONSE}], False))
  assert ex.input_ids == full


def test_prompt_and_response_are_tokenized_separately_at_a_merging_boundary(tok):
  """A template whose generation prompt ends in a space: jointly, BPE would glue that space to the
  response's first word; the example keeps the prompt exactly as encode_chat gives it (what the sampler
  conditions on) and the response as tokenized alone. The text is the same either way."""
  other = load_tokenizer(tok.name_or_path)
  other.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}<|im_end|>{% endfor %}"
                         "{% if add_generation_prompt %}assistant: {% endif %}")
  ex = build_example(other, [USER], RESPONSE)
  prompt = encode_chat(other, [USER])
  assert ex.input_ids[:len(prompt)] == prompt
  assert other.decode(ex.input_ids) == render_chat(other, [USER, {"role": "assistant", "content": RESPONSE}], False)
  assert ex.input_ids != ids(other, other.decode(ex.input_ids))  # jointly the boundary tokens differ


def test_missing_folder_and_missing_files_are_clear_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="does not exist"):
    load_tokenizer(tmp_path / "nowhere")
  (tmp_path / "config.json").write_text("{}")
  with pytest.raises(FileNotFoundError, match="tokenizer.json"):
    load_tokenizer(tmp_path)


def test_tokenizer_without_chat_template_is_a_clear_error(folder, tmp_path):
  bare = tmp_path / "bare"
  shutil.copytree(folder, bare)
  os.remove(bare / "chat_template.jinja")
  tok = load_tokenizer(bare)
  for call in (lambda: render_chat(tok, [USER]), lambda: encode_chat(tok, [USER]),
               lambda: build_example(tok, [USER], RESPONSE)):
    with pytest.raises(TokenizerError, match="no chat template"):
      call()


def test_vocab_size_below_the_byte_alphabet_is_refused(tmp_path):
  with pytest.raises(ValueError, match="vocab_size"):
    build_bpe_tokenizer(sentences(4), vocab_size=100, folder=tmp_path)


def test_template_whose_prompt_is_not_a_prefix_of_the_conversation_is_refused(tok):
  other = load_tokenizer(tok.name_or_path)
  other.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                         "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
  with pytest.raises(TokenizerError, match="cannot be split"):
    build_example(other, [USER], RESPONSE)


def test_build_examples_in_one_batch_equal_one_by_one_with_errors_in_place(tok):
  from emodistill_jax.lm.tokenizer import build_examples
  long_user = {"role": "user", "content": " ".join(sentences(6, seed=1))}
  other_system = {"role": "system", "content": "Be brief."}
  items = [([SYSTEM, long_user], RESPONSE), ([USER], RESPONSE), ([other_system, long_user], "Fine, 90 days."),
           ([SYSTEM, USER], RESPONSE)]
  whole = build_example(tok, *items[0])
  for max_length in (None, len(whole.input_ids) - 20, sum(whole.loss_mask)):
    batch = build_examples(tok, items, max_length)
    for item, got in zip(items, batch):
      try:
        assert got == build_example(tok, *item, max_length=max_length)
      except TokenizerError as err:  # the completion alone fills max_length: the same error, in its slot
        assert isinstance(got, TokenizerError) and str(got) == str(err)
  assert isinstance(build_examples(tok, items, sum(whole.loss_mask))[0], TokenizerError)
  assert build_examples(tok, [], 10) == []
