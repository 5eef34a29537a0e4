"""Qwen2-family language models in Flax: weights, functional LoRA, PEFT adapters, sampling, sharding."""

from emodistill_jax.lm.config import LMConfig, ModelConfigError, config_from_hf, read_config
from emodistill_jax.lm.language_model import LanguageModel, init_model, load_pretrained
from emodistill_jax.lm.lora import LoRA, init_lora, merge
from emodistill_jax.lm.peft_io import AdapterError, load_peft_adapter, save_peft_adapter
from emodistill_jax.lm.weights import WeightsError, save_params
from emodistill_jax.lm.sampler import generate
from emodistill_jax.lm.tokenizer import (Example, TokenizerError, build_bpe_tokenizer, build_example, encode_chat,
                                       end_of_turn_ids, load_tokenizer, render_chat)
