"""fidelite: churn and customer-lifetime-value prediction (the ``fidelite`` CLI lives in
:mod:`fidelite.cli`)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fidelite")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
