"""IQL emotion selector: state encoder, transitions, networks, jitted learner, grids, selector."""

from emodistill_jax.iql.learner import default_config
from emodistill_jax.iql.selector import Selector, SelectorAgent
from emodistill_jax.iql.state import STATE_DIM, STATE_SPEC_VERSION, encode_state, episode_states, state_from_messages
from emodistill_jax.iql.train import train_selector
from emodistill_jax.iql.transitions import TransitionError, TransitionSet, build_transitions, validate
