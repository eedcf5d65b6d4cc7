"""Qini and uplift curves of the held-out comparison (the only matplotlib user here)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fidelite.training.uplift.evaluation import qini_curve, uplift_curve

__all__ = ["plot_curves"]


def plot_curves(heldout: pd.DataFrame, candidates: list[str], *, outcome: str) -> Figure:
    """Qini (left) and uplift (right) curves of each candidate on the held-out rows.

    Parameters
    ----------
    heldout : DataFrame
        ``UpliftFit.heldout``: ``treated``, the outcome column and ``score_<candidate>``.
    candidates : list of str
        Candidates to draw.
    outcome : {"purchased", "net_spend"}
    """
    treated = heldout["treated"].to_numpy()
    y = heldout[outcome].to_numpy(dtype=float)
    share = np.linspace(0.0, 1.0, len(y) + 1)
    figure = Figure(figsize=(11, 4.5))
    qini_axes, uplift_axes = figure.subplots(1, 2)
    for name in candidates:
        score = heldout[f"score_{name}"].to_numpy(dtype=float)
        qini_axes.plot(share, qini_curve(score, treated, y), label=name)
        uplift_axes.plot(share, uplift_curve(score, treated, y), label=name)
    end = qini_curve(np.zeros(len(y)), treated, y)[-1]
    qini_axes.plot([0, 1], [0, end], "k--", label="random")
    what = "purchases" if outcome == "purchased" else "net spend"
    qini_axes.set(
        title=f"Qini curve ({what})", xlabel="share contacted", ylabel=f"incremental {what}"
    )
    uplift_axes.set(
        title=f"Uplift curve ({what})",
        xlabel="share contacted",
        ylabel=f"incremental {what} if all contacted",
    )
    qini_axes.legend(fontsize="small")
    figure.tight_layout()
    return figure
