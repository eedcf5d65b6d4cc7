"""Probabilistic customer-base models fitted by maximum likelihood.

``BetaGeoModel`` (BG/NBD) models the purchase process, ``GammaGammaModel`` the spend
per purchase, and ``BaselineModel`` combines them into the ``baseline_*`` columns
(P(alive), expected purchases and spend, CLV and P(no purchase) over a horizon).
"""

from fidelite.training.baseline.bgnbd import BetaGeoModel
from fidelite.training.baseline.gamma_gamma import GammaGammaModel
from fidelite.training.baseline.model import BASELINE_COLUMNS, BaselineModel

__all__ = ["BASELINE_COLUMNS", "BaselineModel", "BetaGeoModel", "GammaGammaModel"]
