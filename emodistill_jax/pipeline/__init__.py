"""The main job (`run`: scenarios -> sweep -> judge -> IQL -> student -> adapters -> evaluation -> report), its
Markdown report (`report`) and the studies run on a finished workdir (`studies`)."""

from emodistill_jax.pipeline.layout import ADAPTER_STAGES, LORA_STAGES, STAGE_FILE
from emodistill_jax.pipeline.run import Pipeline, run_pipeline

__all__ = ["ADAPTER_STAGES", "LORA_STAGES", "STAGE_FILE", "Pipeline", "run_pipeline"]
