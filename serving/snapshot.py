"""The scores snapshot behind ``/customers/lookup`` and ``/winback``.

``fidelite score`` writes it with :func:`write_snapshot_atomic` (a temporary file in the
same folder, then an atomic rename), so a reader sees either the old or the new file,
never half of one. The service checks the file every few seconds
(``FIDELITE_SNAPSHOT_CHECK_SECONDS``) from a background thread: a changed file is read,
checked and indexed off the request path, then swapped in. A file that cannot be read or
lacks score columns is reported (``/readyz``, ``/model``) while the last good snapshot
keeps being served. Nothing sent to clients names the file's path.

Each loaded snapshot holds an id -> row dictionary and every row's JSON, encoded once,
so a lookup costs a dictionary access per id whatever the snapshot size.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pydantic_core

from fidelite.serving.errors import SnapshotUnavailableError
from fidelite.serving.responses import encode_rows, frame_columns, score_dicts
from fidelite.serving.schemas import SnapshotState

logger = logging.getLogger("fidelite.serving")
#: Columns without which lookups and win-back cannot work.
REQUIRED_COLUMNS = ("customer_id", "as_of", "status", "churn_probability", "predicted_clv")


def write_snapshot_atomic(scores: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a scores frame so that readers never see a partial file.

    Parameters
    ----------
    scores : DataFrame
        The scores frame (``fidelite score``).
    path : path-like
        Target ``.parquet`` (default) or ``.csv``; its folder is created.

    Returns
    -------
    Path
        ``path``, now holding the complete file.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(handle)
    try:
        if target.suffix == ".csv":
            scores.to_csv(temporary, index=False)
        else:
            scores.to_parquet(temporary, index=False)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


class SnapshotProblem(ValueError):
    """A snapshot file that cannot be served (message without the path)."""


@dataclass(frozen=True)
class Snapshot:
    """One loaded, indexed snapshot.

    Attributes
    ----------
    frame : DataFrame
        The scores frame (one row per customer id, last row wins on duplicates).
    positions : dict of str to int
        Row of each customer id in ``frame``.
    results : list of bytes
        Per row, the JSON of a found lookup result ``{"customer_id", "found", "score"}``.
    as_of : date or None
    loaded_at : str
    """

    frame: pd.DataFrame
    positions: dict[str, int]
    results: list[bytes]
    as_of: dt.date | None
    loaded_at: str


def read_snapshot(path: Path) -> Snapshot:
    """Read, check and index a snapshot file.

    Raises
    ------
    SnapshotProblem
        Unreadable file, missing score columns or ids.
    """
    try:
        frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    except Exception as exc:  # any reader failure means "not a usable snapshot"
        raise SnapshotProblem(f"unreadable snapshot file ({type(exc).__name__})") from None
    if "customer_id" not in frame.columns and frame.index.name == "customer_id":
        frame = frame.reset_index()
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise SnapshotProblem(f"snapshot lacks score columns {missing}: re-run `fidelite score`")
    if frame["customer_id"].isna().any():
        raise SnapshotProblem("snapshot has rows without customer_id")
    for column in ("churn_probability", "predicted_clv"):
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise SnapshotProblem(f"snapshot column {column} is not numeric")
    frame = frame.assign(customer_id=frame["customer_id"].astype(str).to_numpy(dtype=object))
    frame = frame.drop_duplicates("customer_id", keep="last").reset_index(drop=True)
    try:
        records = score_dicts(frame_columns(frame), len(frame))
    except (ValueError, TypeError) as exc:
        raise SnapshotProblem(f"snapshot values cannot be read ({type(exc).__name__})") from None
    results = encode_rows(
        [{"customer_id": r["customer_id"], "found": True, "score": r} for r in records]
    )
    days = pd.to_datetime(frame["as_of"], errors="coerce")
    as_of = None if days.isna().all() else days.max().date()
    ids = frame["customer_id"].tolist()
    return Snapshot(
        frame=frame,
        positions=dict(zip(ids, range(len(ids)), strict=True)),
        results=results,
        as_of=as_of,
        loaded_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


class SnapshotStore:
    """The served snapshot and the state of the file behind it.

    Parameters
    ----------
    path : Path or None
        Snapshot file; None when no snapshot is configured.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._current: Snapshot | None = None
        self._seen: tuple[int, int, int] | None = None
        self._error: str | None = None
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        return self.path is not None

    def refresh(self) -> bool:
        """Load the file if it changed since the last attempt; True when swapped in."""
        if self.path is None:
            return False
        with self._lock:
            signature = _signature(self.path)
            if signature is None:
                self._seen = None
                self._error = "no snapshot file yet: run `fidelite score --out ...`"
                return False
            if signature == self._seen:
                return False
            self._seen = signature
            try:
                snapshot = read_snapshot(self.path)
            except SnapshotProblem as exc:
                self._error = str(exc)
                logger.warning("snapshot not loaded: %s (keeping the last good one)", exc)
                return False
            self._current, self._error = snapshot, None
            logger.info(
                "snapshot loaded: %d customers, as_of %s", len(snapshot.frame), snapshot.as_of
            )
            return True

    def current(self) -> Snapshot:
        """The served snapshot.

        Raises
        ------
        SnapshotUnavailableError
            None configured, or none readable yet.
        """
        snapshot = self._current
        if snapshot is None:
            if self.path is None:
                raise SnapshotUnavailableError(
                    "no scores snapshot configured: start the service with --snapshot "
                    "(FIDELITE_SNAPSHOT)",
                    field="snapshot",
                )
            raise SnapshotUnavailableError(
                f"no usable scores snapshot: {self._error or 'not loaded yet'}", field="snapshot"
            )
        return snapshot

    @property
    def ready(self) -> bool:
        """True when no snapshot is configured or one is being served."""
        return self.path is None or self._current is not None

    def state(self) -> SnapshotState:
        snapshot = self._current
        return SnapshotState(
            configured=self.path is not None,
            loaded=snapshot is not None,
            as_of=None if snapshot is None else snapshot.as_of,
            n_customers=None if snapshot is None else len(snapshot.frame),
            loaded_at=None if snapshot is None else snapshot.loaded_at,
            error=self._error,
        )

    def lookup_body(self, customer_ids: list[str]) -> bytes:
        """The JSON body of a ``LookupResponse`` for ``customer_ids`` (in request order)."""
        snapshot = self.current()
        positions, results = snapshot.positions, snapshot.results
        parts: list[bytes] = []
        found = 0
        for cid in customer_ids:
            position = positions.get(cid)
            if position is None:
                parts.append(
                    b'{"customer_id":'
                    + pydantic_core.to_json(cid)
                    + b',"found":false,"score":null}'
                )
            else:
                found += 1
                parts.append(results[position])
        as_of = "null" if snapshot.as_of is None else f'"{snapshot.as_of.isoformat()}"'
        head = (
            f'{{"snapshot_as_of":{as_of},"n_found":{found},'
            f'"n_missing":{len(customer_ids) - found},"results":['
        ).encode()
        return head + b",".join(parts) + b"]}"
