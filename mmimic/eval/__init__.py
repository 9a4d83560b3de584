"""Evaluation against experimental data: gait events, gait-cycle normalisation, curve
comparison, and name mappings from OpenSim gait data to the MuJoCo bodies; tracking metrics of
evaluation rollouts (:mod:`mmimic.eval.metrics`) and the gait validation pipeline
(:mod:`mmimic.eval.validation`). Import the rollouts (:mod:`mmimic.eval.rollout`, which needs
:mod:`mmimic.motion`, itself importing :mod:`mmimic.eval.gait`), the report
(:mod:`mmimic.eval.report`) and rendering (:mod:`mmimic.eval.render`) from their modules."""

from mmimic.eval.metrics import EvaluationMetrics, RolloutArrays, compute_metrics
from mmimic.eval.validation import (
    GaitComparison,
    GaitData,
    GaitDataError,
    compare_gait,
    load_experiment,
    load_gait120,
    load_opensim_trial,
    replay_gait,
    simulated_gait,
)

__all__ = [
    "EvaluationMetrics",
    "GaitComparison",
    "GaitData",
    "GaitDataError",
    "RolloutArrays",
    "compare_gait",
    "compute_metrics",
    "load_experiment",
    "load_gait120",
    "load_opensim_trial",
    "replay_gait",
    "simulated_gait",
]
