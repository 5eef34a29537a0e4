"""Names of the pipeline workdir's stages and files, shared by the pipeline, its report and the studies."""

STAGE_FILE = "stage.json"
# adapter name in the evaluation -> (pipeline stage, folder)
ADAPTER_STAGES = {"sft": "sft", "jpo": "jpo", "jpo_base": "jpo_base", "alol": "alol", "sft_free": "sft_free",
                  "jpo_free": "jpo_free", "jpo_free_base": "jpo_free_base"}
# the LoRA stages after the student, in run order
LORA_STAGES = ("sft", "sft_free", "jpo", "jpo_base", "jpo_free", "jpo_free_base", "alol")
# the expression policies compared offline (`Pipeline.expression`): name -> adapter (None: the vanilla student)
EXPRESSION_POLICIES = (("Vanilla SLM", None), ("SFT", "sft"), ("JPO", "jpo_base"), ("SFT+JPO", "jpo"),
                       ("A-LoL", "alol"))
# with the sandbox as the focal teacher, its own turns on the same states head the table (the student's reference)
TEACHER_POLICY = "Sandbox teacher"
