"""The sandbox (docs/sandbox.md): deterministic, seeded stand-ins for the API models.

A counterparty with a hidden per-domain emotion-efficacy table, a phrase-bank teacher with controlled
flaws, a rubric judge and simple selectors; all follow the async protocol of `negotiation.protocol` and are
pure functions of (context, messages). `truth` and `best_schedule` expose the planted table for checks.

    from emodistill_jax.agents.sandbox import SandboxCounterparty, SandboxTeacher, UniformSelector
    episode = await Negotiation(SandboxTeacher(), UniformSelector(), SandboxCounterparty()).run(ctx)
"""

from emodistill_jax.agents.sandbox.counterparty import CounterpartyState, Reading, SandboxCounterparty
from emodistill_jax.agents.sandbox.judge import SandboxJudge
from emodistill_jax.agents.sandbox.lexicon import (CUES, EXPRESSIONS, LEVERAGE, detect_emotion, detect_leverage,
                                                   is_repetition, is_ultimatum)
from emodistill_jax.agents.sandbox.selectors import FixedSelector, ScheduleSelector, UniformSelector
from emodistill_jax.agents.sandbox.teacher import FLAWS, SandboxTeacher, TurnPlan
from emodistill_jax.agents.sandbox.truth_table import PHASES, best_schedule, mean_efficacy, phase_of_turn, truth
