"""One error hierarchy for the whole product.

Every error a user can cause or meet derives from :class:`FideliteError`, which carries
the two numbers its front ends need: the CLI's exit status and the service's HTTP status.
The CLI (:mod:`fidelite.cli`) and the service (:mod:`fidelite.serving.service`) map
errors to output in one place each, by reading these attributes; no front end keeps a
table of its own.

=============================  =========  ======  =====================================
error                          exit code  HTTP    raised when
=============================  =========  ======  =====================================
``FideliteError``              1          500     base class, never raised directly
``DataContractError``          2          400     an input table, date or value breaks
                                                  the data contract
``ConfigurationError``         2          500     a setting (option, env variable)
                                                  is invalid
``InsufficientHistoryError``   3          422     the data are too short or too thin
                                                  to train or evaluate
``ModelNotFoundError``         4          503     no model where one was asked for
``ModelQualityError``          5          422     a trained model is refused (missing
                                                  or NaN validation metrics)
=============================  =========  ======  =====================================

Subclasses elsewhere (for example the service's request errors) set their own statuses.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ConfigurationError",
    "DataContractError",
    "FideliteError",
    "InsufficientHistoryError",
    "ModelNotFoundError",
    "ModelQualityError",
]


class FideliteError(Exception):
    """Base of every fidelite error.

    Parameters
    ----------
    message : str
        What is wrong, naming the file, column, field or setting concerned.
    field : str, optional
        Dotted name of the offending input (``transactions.timestamp``,
        ``history.transactions.amount``, ``FIDELITE_MAX_BATCH``); shown to API clients.
    """

    exit_code: ClassVar[int] = 1
    http_status: ClassVar[int] = 500
    #: How the CLI introduces the message ("data error: ...").
    label: ClassVar[str] = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    @property
    def message(self) -> str:
        """The message without the class name."""
        return str(self)


class DataContractError(FideliteError, ValueError):
    """Input data violate the data contract (:mod:`fidelite.features.contract`).

    The message names the file or table, the column and up to five bad rows.
    """

    exit_code = 2
    http_status = 400
    label = "data error"


class ConfigurationError(FideliteError, ValueError):
    """A setting is invalid; the message names the option or environment variable."""

    exit_code = 2
    http_status = 500
    label = "configuration error"


class InsufficientHistoryError(FideliteError, ValueError):
    """The data cannot support the requested training or evaluation."""

    exit_code = 3
    http_status = 422
    label = "insufficient history"


class ModelNotFoundError(FideliteError, LookupError):
    """No model exists at the requested URI, version or alias."""

    exit_code = 4
    http_status = 503
    label = "model not found"


class ModelQualityError(FideliteError, ValueError):
    """A trained model is refused because its validation says it cannot be trusted."""

    exit_code = 5
    http_status = 422
    label = "model refused"
