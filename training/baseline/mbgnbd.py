"""MBG/NBD model of repeat purchasing (Batislam, Denizel & Filiztekin 2007).

"Empirical validation and comparison of models for customer base analysis",
International Journal of Research in Marketing 24(3), with the erratum of Wagner &
Hoppe (2008). The BG/NBD story with one change: a customer may also drop out right
after the *first* purchase, so with ``x`` repeat purchases they survived ``k = x + 1``
dropout opportunities (``x`` in BG/NBD).

Why it matters here: BG/NBD gives ``p_alive = 1`` to every one-time buyer (no repeat
purchase, no chance to have left), even after years of silence. Under MBG/NBD

    p_alive(x=0, T) = 1 / (1 + a/b * ((alpha + T) / alpha)^r)

falls as the silence ``T`` grows, like it does for repeat buyers. The math lives in
:mod:`fidelite.training.baseline.bgnbd`, written for ``k``; this model only sets it.
"""

from __future__ import annotations

from typing import ClassVar

from fidelite.training.baseline.bgnbd import BetaGeoModel

__all__ = ["ModifiedBetaGeoModel"]


class ModifiedBetaGeoModel(BetaGeoModel):
    """MBG/NBD model fitted by penalised maximum likelihood (lifetimes'
    ``ModifiedBetaGeoFitter``).

    Parameters
    ----------
    penalizer : float or "auto", default "auto"
        L2 penalty on (r, alpha, a, b), ``alpha`` in units of the longest customer
        age, as in :class:`~fidelite.training.baseline.bgnbd.BetaGeoModel`; "auto" is
        ``AUTO_PENALTY / n_customers``.
    initial_params : mapping or sequence of 4 floats, optional
        Starting (r, alpha, a, b) in the time unit of the data.

    Attributes
    ----------
    params_ : dict[str, float]
        ``r``, ``alpha`` (time unit of ``recency``/``T``), ``a``, ``b``. ``p ~ Beta(a,
        b)`` is the dropout probability at the first purchase and after each repeat.

    Notes
    -----
    ``p_alive``, ``expected_purchases`` (Wagner & Hoppe's corrected eq.) and
    ``prob_no_purchase`` are BG/NBD's with ``b + x`` in place of ``b + x - 1``;
    ``prob_no_purchase`` stays ``1 - P(alive) + P(alive) ((alpha+T)/(alpha+T+t))^(r+x)``.
    """

    model_name: ClassVar[str] = "MBG/NBD"
    dropout_offset: ClassVar[int] = 1
