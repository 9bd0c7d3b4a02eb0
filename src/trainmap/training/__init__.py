"""Training: data sets, models, the task registry and the batched multi-seed trainer.

* :mod:`trainmap.training.tasks`: the task registry and how to add a task;
* :mod:`trainmap.training.trainer`: how seeds are batched, measured and resumed;
* :mod:`trainmap.training.runs`: gathering jobs into a setting's metrics table
  (pandas only, so that it needs no torch).

This package file imports nothing, so that ``runs`` can be used without torch.
"""
