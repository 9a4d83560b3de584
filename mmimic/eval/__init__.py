"""Evaluation of policies and comparison with experimental walking; import from the modules:

* :mod:`mmimic.eval.rollout`: every clip once from its first frame (batched, deterministic policy);
  :mod:`mmimic.eval.metrics`: the tracking metrics of those rollouts;
* :mod:`mmimic.eval.gait`: gait events, cycle normalisation, curve comparison, :class:`GaitData`;
  :mod:`mmimic.eval.human_data` and :mod:`mmimic.eval.lab_trial`: experimental trials;
  :mod:`mmimic.eval.model_gait`: the body's replayed or simulated walking;
  :mod:`mmimic.eval.comparison`: one against the other over the gait cycle;
* :mod:`mmimic.eval.report` (plots, report.md) and :mod:`mmimic.eval.render` (videos).
"""
