"""Probabilistic customer-base models fitted by penalised maximum likelihood.

Purchase process: ``BetaGeoModel`` (BG/NBD), ``ModifiedBetaGeoModel`` (MBG/NBD) and
``ParetoNBDModel`` (Pareto/NBD); spend: ``GammaGammaModel``. All share one
maximum-likelihood base (``mle.MaximumLikelihoodModel``: validation, penalty,
convergence rule, standard errors and ``summary()``). ``BaselineModel`` combines a
purchase model and Gamma-Gamma into the ``baseline_*`` columns (P(alive), expected
purchases and spend, CLV and P(no purchase) over a horizon).
"""

from fidelite.training.baseline.bgnbd import BetaGeoModel
from fidelite.training.baseline.gamma_gamma import GammaGammaModel
from fidelite.training.baseline.mbgnbd import ModifiedBetaGeoModel
from fidelite.training.baseline.mle import AUTO_PENALTY, MaximumLikelihoodModel
from fidelite.training.baseline.model import (
    BASELINE_COLUMNS,
    PURCHASE_MODELS,
    RFM_COLUMNS,
    BaselineModel,
)
from fidelite.training.baseline.pareto_nbd import ParetoNBDModel
from fidelite.training.baseline.purchase import PurchaseModel

__all__ = [
    "AUTO_PENALTY",
    "BASELINE_COLUMNS",
    "PURCHASE_MODELS",
    "RFM_COLUMNS",
    "BaselineModel",
    "BetaGeoModel",
    "GammaGammaModel",
    "MaximumLikelihoodModel",
    "ModifiedBetaGeoModel",
    "ParetoNBDModel",
    "PurchaseModel",
]
