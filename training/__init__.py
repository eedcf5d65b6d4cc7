"""Training (issue 3): labels, the BG/NBD + Gamma-Gamma baseline, LightGBM churn and
CLV models, the ``FideliteModel`` MLflow pyfunc, tracking, registry and scoring.

Submodules are imported explicitly (``from fidelite.training.train import train``) so that
light users such as ``training.labels`` do not pay for importing MLflow.
"""
