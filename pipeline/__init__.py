"""A reproducible overfitting study: DVC stages, Hydra configs, MLflow tracking.

The stages, in the order ``dvc repro`` runs them, are the modules
:mod:`pipeline.generate`, :mod:`pipeline.split`, :mod:`pipeline.train`,
:mod:`pipeline.crossval`, :mod:`pipeline.evaluate` and :mod:`pipeline.plot`.
"""
