"""Training: backtest windows, LightGBM churn and CLV models over the probabilistic
baseline, the ``FideliteModel`` MLflow pyfunc, tracking, registry and scoring.

Start at :mod:`fidelite.training.train` (a run from inputs to a registered model) and
:mod:`fidelite.training.fitting` (the pure modelling step); ARCHITECTURE.md maps the
modules. Submodules are imported explicitly (``from fidelite.training.train import
train``) so that light users such as ``training.labels`` do not pay for importing MLflow.
"""
