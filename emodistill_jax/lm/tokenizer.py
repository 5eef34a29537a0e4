"""Tokenizer and chat template from a model folder, and training examples built on them.

Prompts go through the folder's own chat template (`apply_chat_template`), so what the student
sees in training and in sampling is byte-identical to what the model was tuned on.

Choices:
- `build_example` tokenizes the prompt and the completion separately: the prompt ids are exactly
  `encode_chat(messages)` (what the sampler conditions on) and the completion ids are the canonical
  tokenization of the completion text (what the model should emit after that prompt). This equals
  tokenizing the whole rendered conversation whenever the generation prompt ends at a pre-tokenizer
  boundary, which holds for ChatML and Llama-3 templates (they end in a special token or a newline)
  unless the response itself starts with whitespace that BPE would merge with that newline; then the
  separate split is kept on purpose, as it is the one generation produces.
- The completion is what the template renders after the generation prompt for an assistant message,
  cut after its last end-of-turn token (`<|im_end|>` for ChatML; the newline the template writes after
  it is not a target, generation stops before it). Anything the template puts before the response text
  (e.g. an empty think block) is part of the completion and is trained on too.
- Truncation drops the earliest prompt tokens, never the completion; a leading system message is
  kept whole when it takes at most half of the prompt's room, so the model still sees its instructions and the
  latest turns (beyond that, the end of the conversation is kept instead).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from emodistill_jax.errors import ConfigError, InputFileError, MissingInputError
from emodistill_jax.files import read_json

Message = Mapping[str, str]

# Files from which transformers can build a tokenizer without the hub (fast, BPE vocab, sentencepiece).
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer.model")
# Tokens that end a turn in common chat formats (ChatML, Llama-3, Phi-3, Gemma) besides eos.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")
CHATML_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
DEFAULT_SYSTEM = "You are a helpful assistant."
# Qwen2's pre-tokenizer split: digits one by one, letters with one leading non-letter, newline runs apart.
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")


class TokenizerError(InputFileError):
  pass


@dataclasses.dataclass(frozen=True)
class Example:
  """One supervised sequence: loss_mask is 1 on the completion (response + end-of-turn), 0 on the prompt."""

  input_ids: list[int]
  loss_mask: list[int]
  truncated: bool = False

  @property
  def prompt_length(self) -> int:
    return len(self.input_ids) - sum(self.loss_mask)


def load_tokenizer(folder: str | os.PathLike):
  """The tokenizer (with its chat template) saved in a model folder; never contacts the hub."""
  folder = os.fspath(folder)
  if not os.path.isdir(folder):
    raise MissingInputError(f"tokenizer folder {folder!r} does not exist")
  if not any(os.path.exists(os.path.join(folder, name)) for name in TOKENIZER_FILES):
    raise MissingInputError(f"{folder!r} holds no tokenizer: none of {', '.join(TOKENIZER_FILES)} is there")
  for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "special_tokens_map.json"):
    path = os.path.join(folder, name)
    if os.path.exists(path):
      read_json(path, TokenizerError)  # a damaged file is named here, not deep inside transformers
  from transformers import AutoTokenizer  # heavy import, only when a tokenizer is needed
  return AutoTokenizer.from_pretrained(folder, local_files_only=True)


def _require_template(tokenizer) -> None:
  if not getattr(tokenizer, "chat_template", None):
    raise TokenizerError(f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no chat template "
                         "(no chat_template.jinja and no chat_template in tokenizer_config.json)")


def render_chat(tokenizer, messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
  """The conversation as the model folder's chat template writes it."""
  _require_template(tokenizer)
  return tokenizer.apply_chat_template([dict(m) for m in messages], tokenize=False,
                                       add_generation_prompt=add_generation_prompt)


def _ids(out: Any) -> list[int]:
  # transformers 5 returns a BatchEncoding from apply_chat_template(tokenize=True); 4.x a list
  if hasattr(out, "keys") and "input_ids" in out.keys():
    out = out["input_ids"]
  return [int(i) for i in out]


def encode_chat(tokenizer, messages: Sequence[Message], add_generation_prompt: bool = True) -> list[int]:
  """Token ids of `render_chat` (no extra special tokens: the template writes any BOS itself)."""
  _require_template(tokenizer)
  return _ids(tokenizer.apply_chat_template([dict(m) for m in messages], tokenize=True,
                                            add_generation_prompt=add_generation_prompt))


def _token_id(tokenizer, token: str) -> int | None:
  # convert_tokens_to_ids maps an unknown token to unk (a real id), so check the round trip
  i = tokenizer.convert_tokens_to_ids(token)
  if i is None or isinstance(i, list) or tokenizer.convert_ids_to_tokens(i) != token:
    return None
  return int(i)


def end_of_turn_ids(tokenizer) -> list[int]:
  """Stop ids for generation: eos, then whichever end-of-turn tokens of common chat formats exist."""
  out: list[int] = []
  eos = tokenizer.eos_token_id
  for i in ([eos] if isinstance(eos, int) else list(eos or [])) + [
      _token_id(tokenizer, t) for t in END_OF_TURN_TOKENS]:
    if i is not None and i not in out:
      out.append(int(i))
  return out


def _completion_text(tokenizer, messages: Sequence[Message], response: str) -> tuple[str, str]:
  """(prompt text, text the template writes after it for the assistant message, to the end)."""
  prompt = render_chat(tokenizer, messages, add_generation_prompt=True)
  full = render_chat(tokenizer, list(messages) + [{"role": "assistant", "content": response}],
                     add_generation_prompt=False)
  if not full.startswith(prompt):
    at = len(os.path.commonprefix([prompt, full]))
    near = slice(max(at - 20, 0), at + 20)
    raise TokenizerError("the chat template renders the conversation with the assistant message so that it does "
                         "not start with the prompt (add_generation_prompt=True), so prompt and response cannot be "
                         f"split: they part at {prompt[near]!r} vs {full[near]!r}")
  completion = full[len(prompt):]
  if response not in completion and response.strip() not in completion:
    raise TokenizerError(f"the chat template does not write the response text verbatim: {completion[:80]!r}")
  return prompt, completion


def _cut_after_end_of_turn(ids: list[int], stops: set[int]) -> list[int]:
  """Keep tokens up to the last end-of-turn token (template text after it, like ChatML's newline,
  is not generated); a template with no such token keeps everything."""
  for k in range(len(ids) - 1, -1, -1):
    if ids[k] in stops:
      return ids[:k + 1]
  return ids


def _system_ids(tokenizer, messages: Sequence[Message]) -> list[int]:
  """The chat-template ids of a leading system message alone, or [] (no system message)."""
  if not messages or messages[0].get("role") != "system":
    return []
  try:
    return encode_chat(tokenizer, messages[:1], add_generation_prompt=False)
  except Exception:  # some templates refuse a conversation without a user turn; then just left-truncate
    return []


def _cut_prompt(prompt_ids: list[int], system_ids: list[int], budget: int) -> list[int]:
  """A too long prompt cut from the left to `budget` tokens -- the one cut of training (`build_examples`) and
  generation (`generation_prompt`). A leading system message (system_ids, when a clean prefix of the prompt) is
  kept whole only when it takes at most half of the budget: with a short window (the sandbox student's 192 tokens)
  the end of the user message (offers, style block, cue) matters more than the rules, and a system message filling
  the window would leave the model nothing of the turn."""
  head = system_ids
  if not (prompt_ids[:len(head)] == head and len(head) < len(prompt_ids) and 2 * len(head) <= budget):
    head = []
  return head + prompt_ids[len(prompt_ids) - (budget - len(head)):]


def generation_prompt(tokenizer, messages: Sequence[Message], max_length: int, max_new_tokens: int) -> list[int]:
  """Prompt ids for generating with a model trained at `max_length` (the sandbox student: its settings.max_length,
  also in student_report.json): the chat-template prompt, cut from the left to max_length - max_new_tokens tokens
  while keeping a leading system message whole when it takes at most half of the room -- the same cut
  `build_example` made in training, so the model never sees positions or contexts it was not trained on."""
  ids = encode_chat(tokenizer, messages)
  budget = max_length - max_new_tokens
  if budget < 1:
    raise ConfigError(f"max_new_tokens={max_new_tokens} leaves no prompt token within max_length={max_length}")
  if len(ids) <= budget:
    return ids
  return _cut_prompt(ids, _system_ids(tokenizer, messages), budget)


def build_example(tokenizer, messages: Sequence[Message], response: str, max_length: int | None = None) -> Example:
  """Prompt (chat with generation prompt) + completion (response and end-of-turn), mask 1 on the completion.

  With max_length, a too long example loses its earliest prompt tokens (after a leading system message when
  that takes at most half of the room) and is flagged truncated; a completion that leaves no room for a prompt
  token is an error.
  """
  out = build_examples(tokenizer, [(messages, response)], max_length)[0]
  if isinstance(out, TokenizerError):
    raise out
  return out


def build_examples(tokenizer, items: Sequence[tuple[Sequence[Message], str]],
                   max_length: int | None = None) -> list[Example | TokenizerError]:
  """`build_example` for many (messages, response) pairs: the texts are encoded in one batch (the Rust tokenizer
  runs it on every core) and each distinct system message once; an example whose completion leaves no prompt
  token within max_length comes back as its TokenizerError (the caller decides whether to drop it)."""
  texts = [_completion_text(tokenizer, messages, response) for messages, response in items]
  encoded = _encode_batch(tokenizer, [t for pair in texts for t in pair])
  stops = set(end_of_turn_ids(tokenizer)) | set(getattr(tokenizer, "all_special_ids", []))
  heads: dict[str, list[int]] = {}
  out: list[Example | TokenizerError] = []
  for k, (messages, _) in enumerate(items):
    prompt_ids = encoded[2 * k]  # = encode_chat(messages): apply_chat_template tokenizes the same way
    completion_ids = _cut_after_end_of_turn(encoded[2 * k + 1], stops)
    if max_length is None or len(prompt_ids) + len(completion_ids) <= max_length:
      out.append(Example(prompt_ids + completion_ids, [0] * len(prompt_ids) + [1] * len(completion_ids), False))
      continue
    budget = max_length - len(completion_ids)  # prompt tokens that fit
    if budget < 1:  # the first target token needs at least one token before it
      out.append(TokenizerError(f"the response and end-of-turn take {len(completion_ids)} tokens, which leaves no "
                                f"prompt token within max_length={max_length}"))
      continue
    system = messages[0].get("content", "") if messages and messages[0].get("role") == "system" else ""
    if system not in heads:
      heads[system] = _system_ids(tokenizer, messages)
    prompt_ids = _cut_prompt(prompt_ids, heads[system], budget)
    out.append(Example(prompt_ids + completion_ids, [0] * len(prompt_ids) + [1] * len(completion_ids), True))
  return out


def _encode_batch(tokenizer, texts: Sequence[str]) -> list[list[int]]:
  if not texts:
    return []
  return [_ids(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


def chatml_template(system_prompt: str | None = DEFAULT_SYSTEM) -> str:
  """Qwen2-Instruct's ChatML template; system_prompt is inserted when the chat has no system message."""
  default = ""
  if system_prompt is not None:
    quoted = system_prompt.replace("\\", "\\\\").replace("'", "\\'")
    default = ("{% if loop.first and messages[0]['role'] != 'system' %}"
               "{{ '<|im_start|>system\n" + quoted + "<|im_end|>\n' }}{% endif %}")
  return ("{% for message in messages %}" + default +
          "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def build_bpe_tokenizer(texts: Iterable[str], vocab_size: int, folder: str | os.PathLike, min_frequency: int = 2,
                        system_prompt: str | None = DEFAULT_SYSTEM):
  """Trains a byte-level BPE (Qwen2's pre-tokenizer) with ChatML special tokens and template, saves it to
  `folder` so that `load_tokenizer` / `AutoTokenizer` load it offline, and returns the loaded tokenizer.

  Special tokens get ids 0, 1, 2 (<|endoftext|>, <|im_start|>, <|im_end|>); eos is <|im_end|> and pad is
  <|endoftext|>, as in Qwen2-Instruct.
  """
  from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
  from transformers import PreTrainedTokenizerFast

  alphabet = pre_tokenizers.ByteLevel.alphabet()
  if vocab_size < len(alphabet) + len(CHATML_SPECIAL_TOKENS):
    raise ValueError(f"vocab_size={vocab_size} is below the {len(alphabet)} bytes plus "
                     f"{len(CHATML_SPECIAL_TOKENS)} special tokens a byte-level BPE needs")
  bpe = Tokenizer(models.BPE())  # byte level: every input is covered, so no unk token
  bpe.normalizer = normalizers.NFC()
  bpe.pre_tokenizer = pre_tokenizers.Sequence([
      pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
      pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
  bpe.decoder = decoders.ByteLevel()
  trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
                                special_tokens=list(CHATML_SPECIAL_TOKENS), initial_alphabet=alphabet)
  bpe.train_from_iterator(texts, trainer)
  wrapped = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                    chat_template=chatml_template(system_prompt), model_max_length=32768)
  folder = os.fspath(folder)
  os.makedirs(folder, exist_ok=True)
  wrapped.save_pretrained(folder)
  return load_tokenizer(folder)


__all__ = ["Example", "TokenizerError", "build_bpe_tokenizer", "build_example", "build_examples", "chatml_template",
           "encode_chat", "end_of_turn_ids", "generation_prompt", "load_tokenizer", "render_chat"]
