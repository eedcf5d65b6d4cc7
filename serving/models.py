"""The model being served, and following the registry alias without a restart.

At start the service serves the model version exported into the BentoML store (what a
bento packages). When ``FIDELITE_MODEL_URI`` names a registry alias
(``models:/fidelite@champion``, set by ``fidelite serve``) and
``FIDELITE_RELOAD_SECONDS`` is not 0, a background thread asks the registry every that
many seconds which version the alias points at; a new version is loaded and checked
off the request path, then swapped in with one assignment, so requests in flight finish
on the version they started with and none is dropped. ``/model`` reports the version
actually served, whether the alias still points at it, and the last reload error.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import Any

import bentoml

from fidelite.features import ChannelVocabulary
from fidelite.features.build import POPULATION_COLUMNS
from fidelite.serving.loader import (
    BENTO_MODEL_NAME,
    model_metadata,
    resolve_registry_model,
    run_details,
)

logger = logging.getLogger("fidelite.serving")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def fidelite_version() -> str:
    try:
        return metadata.version("fidelite")
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass
class ServedModel:
    """A loaded model version and what ``/model`` says about it."""

    python_model: Any
    meta: dict[str, Any]
    loaded_at: str = field(default_factory=_now)

    @property
    def version(self) -> str:
        return str(self.meta.get("version", ""))

    @property
    def name(self) -> str:
        return str(self.meta.get("name", BENTO_MODEL_NAME))

    @property
    def alias(self) -> str | None:
        return self.meta.get("alias") or None

    @functools.cached_property
    def channels(self) -> ChannelVocabulary:
        """The channels the model has input columns for (features of raw history get them)."""
        return ChannelVocabulary.from_columns(getattr(self.python_model, "feature_names", ()))

    @functools.cached_property
    def uses_population(self) -> bool:
        """Whether the model reads a population column (ranked among the customers
        built together, e.g. ``rfm_segment``): features of raw history then get them.

        None of fidelite's churn/CLV models does since ``rfm_segment`` stopped being an
        input; a model with an uplift component is assumed to (its inputs are not
        inspected here), so its history features keep every column.
        """
        model = self.python_model
        if getattr(model, "uplift", None) is not None:
            return True
        names: set[str] = set()
        for population in ("purchasers", "prospects"):
            hurdle = getattr(model, population, None)
            encoder = getattr(hurdle, "encoder", None)
            names.update(getattr(encoder, "feature_names_", ()))
        if getattr(model, "purchasers", None) is None and getattr(model, "prospects", None) is None:
            return True  # not a model we can inspect: keep every column
        return bool(names & set(POPULATION_COLUMNS))


def _served(python_model: Any, meta: dict[str, Any]) -> ServedModel:
    return ServedModel(python_model=python_model, meta=meta)


def load_from_bento(bento_model: bentoml.Model) -> ServedModel:
    """The model exported by ``fidelite export-bento`` (or packaged in a bento)."""
    pyfunc = bentoml.mlflow.load_model(bento_model)
    meta = dict(bento_model.info.metadata)
    meta.setdefault("version", bento_model.tag.version)
    return _served(pyfunc.unwrap_python_model(), meta)


def load_from_registry(model_uri: str, tracking_uri: str) -> ServedModel:
    """The version a registry URI points at now, loaded straight from MLflow."""
    import mlflow

    from fidelite.training.tracking import tracking_scope

    registered = resolve_registry_model(model_uri, tracking_uri)
    version_uri = f"models:/{registered.name}/{registered.version}"
    # the pyfunc loader reads MLflow's process-wide registry URI
    with tracking_scope(tracking_uri) as client:
        python_model = mlflow.pyfunc.load_model(version_uri).unwrap_python_model()
        meta = model_metadata(registered, python_model, run_details(client, registered.run_id))
    return _served(python_model, meta)


@dataclass(frozen=True)
class Following:
    """State of the registry check."""

    alias_version: str | None = None
    checked_at: str | None = None
    error: str | None = None


class ModelHolder:
    """The served model plus, optionally, the registry alias it follows.

    Parameters
    ----------
    initial : ServedModel
        The model to serve first.
    model_uri : str or None
        Registry URI to follow (``models:/<name>@<alias>``); None = never reload.
    tracking_uri : str or None
        MLflow tracking URI used to follow it.
    """

    def __init__(
        self, initial: ServedModel, model_uri: str | None, tracking_uri: str | None
    ) -> None:
        self.model = initial
        self.model_uri = model_uri if model_uri and "@" in model_uri else None
        self.tracking_uri = tracking_uri
        self.following = Following()

    @property
    def follows(self) -> bool:
        return self.model_uri is not None and self.tracking_uri is not None

    def check(self) -> bool:
        """Ask the registry once; load and swap in a new version. True when swapped."""
        if not self.follows:
            return False
        try:
            registered = resolve_registry_model(self.model_uri, self.tracking_uri)
        except Exception as exc:  # registry down: keep serving, report it
            self.following = replace(
                self.following, checked_at=_now(), error=f"registry check failed: {exc}"[:300]
            )
            logger.warning(
                "registry check failed (%s); still serving version %s",
                type(exc).__name__,
                self.model.version,
            )
            return False
        self.following = Following(alias_version=registered.version, checked_at=_now())
        if registered.version == self.model.version:
            return False
        try:
            fresh = load_from_registry(self.model_uri, self.tracking_uri)
        except Exception as exc:
            self.following = replace(self.following, error=f"reload failed: {exc}"[:300])
            logger.warning(
                "could not load version %s (%s); still serving %s",
                registered.version,
                type(exc).__name__,
                self.model.version,
            )
            return False
        previous, self.model = self.model, fresh
        logger.info(
            "now serving %s version %s (was %s)", fresh.name, fresh.version, previous.version
        )
        return True

    def info(self) -> dict[str, Any]:
        """What ``/model`` reports, without the snapshot part."""
        model, following = self.model, self.following
        meta = model.meta
        is_champion = None
        if self.follows and following.alias_version is not None:
            is_champion = following.alias_version == model.version
        return {
            "name": model.name,
            "version": model.version,
            "alias": model.alias,
            "is_champion": is_champion,
            "alias_version": following.alias_version,
            "checked_at": following.checked_at,
            "reload_error": following.error,
            "run_id": meta.get("run_id") or None,
            "model_uri": str(meta.get("model_uri", "")),
            "train_start": meta.get("train_start") or None,
            "train_end": meta.get("train_end") or None,
            "horizon_days": meta.get("horizon_days") or None,
            "validation_metrics": dict(meta.get("validation_metrics", {})),
            "loaded_at": model.loaded_at,
            "fidelite_version": fidelite_version(),
        }
