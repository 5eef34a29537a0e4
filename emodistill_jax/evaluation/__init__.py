"""Held-out evaluation: methods, the runner, statistics, studies, tables, plots and a dialogue viewer."""

from emodistill_jax.evaluation.methods import PAPER_METHODS, Method, by_name, fixed
from emodistill_jax.evaluation.runner import Components, episode_metrics, run_method
from emodistill_jax.evaluation.stats import (bonferroni, emotion_study, method_metrics, paired_difference, paired_t,
                                             spearman, welch_ci, welch_test)
from emodistill_jax.evaluation.studies import (KAPPAS, LAMBDAS, emotion_prompting_study, emotion_study_rows, jpo_sweep,
                                               kappa_sweep, run_emotion_study, tournament, transfer_matrix)
from emodistill_jax.evaluation.viewer import render_episode, render_episodes
