"""The fetch manifest: an append-only JSON lines file in OUT_DIR that survives a crash.

Each line is one event, written and fsync'ed before the run goes on:

- ``run``: a run starts (``run`` id, ``key`` = source + query + filters, ``started``, ``search``,
  ``full`` when ``--full`` asked for the complete listing);
- ``plan``: the ids this run will fetch (E-utilities), the cursor an interrupted run resumes, and
  ``listed``, the query's complete id list, when the run has one;
- ``cursor``: the page the run has reached (ClinicalTrials.gov ``page_token``) and ``ids``, the
  studies of the pages read so far;
- ``record``: one document: ``source``, ``id``, ``version``, ``sha256``, ``file``, ``fetched``,
  ``status`` (fetched, updated, unchanged, skipped, failed, gone) and ``reason``;
- ``scope``: ids recorded by a query's runs (written by compaction, which drops old runs);
- ``done``: the run finished, with its counts.

A crash can only tear the last line; it is ignored and cut off on the next open. Files are written
to a temporary name and renamed, then their ``record`` line is appended, so a record always names
a complete file. The manifest and its lock file start with a dot: ``litrag ingest OUT_DIR`` skips
them. ``compact`` rewrites the manifest to its current state (see there).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

from core.errors import LitragError

log = logging.getLogger(__name__)

MANIFEST_NAME = ".litrag-fetch.jsonl"
LOCK_NAME = ".litrag-fetch.lock"
#: Where compaction writes the new manifest before renaming it over the old one.
COMPACT_NAME = ".litrag-fetch.jsonl.compact.tmp"

Status = Literal["fetched", "updated", "unchanged", "skipped", "failed", "gone"]
STATUSES: tuple[Status, ...] = ("fetched", "updated", "unchanged", "skipped", "failed", "gone")
#: Statuses that leave a complete document file in OUT_DIR.
HAVE = frozenset({"fetched", "updated", "unchanged"})


def scope_of(key: str) -> str:
    """The query a run key belongs to, without its ``--since``: the documents it owns."""
    return key.rsplit("|since=", 1)[0]


class ManifestError(LitragError):
    """OUT_DIR is in use by another fetch, or its manifest cannot be read or written."""


def now_iso() -> str:
    """The current UTC time, ISO 8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class Record:
    """One document's entry: where its file is and which version it holds."""

    source: str
    id: str
    status: Status
    run: str
    fetched: str
    version: str | None = None
    sha256: str | None = None
    file: str | None = None
    reason: str | None = None


@dataclass(slots=True)
class Run:
    """A run's state as read back from the manifest."""

    run: str
    key: str
    source: str
    started: str
    search: dict[str, Any] = field(default_factory=dict)
    full: bool = False  # --full: the complete listing was asked for
    plan: list[str] | None = None
    cursor: dict[str, Any] = field(default_factory=dict)
    listed: list[str] = field(default_factory=list)  # plan's complete list / pages' ids so far
    plan_listed: bool = False  # the plan carries the query's complete id list
    finished: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    handled: set[str] = field(default_factory=set)  # ids recorded by this run (not failed)

    @property
    def done(self) -> bool:
        """The run finished."""
        return self.finished is not None

    @property
    def scope(self) -> str:
        """The query this run belongs to (its key without ``--since``)."""
        return scope_of(self.key)


class Manifest:
    """The manifest of one OUT_DIR, held under an exclusive lock while open."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.path = out_dir / MANIFEST_NAME
        self.runs: dict[str, Run] = {}
        self.latest: dict[tuple[str, str], Record] = {}  # last record of each document
        self.files: dict[tuple[str, str], Record] = {}  # last record with a complete file
        self.scopes: dict[str, set[str]] = {}  # query (scope_of) -> ids its runs recorded
        self.corrupt_lines = 0
        self._lock_fh: IO[bytes] | None = None
        self._fh: IO[bytes] | None = None

    @classmethod
    def open(cls, out_dir: Path) -> Manifest:
        """Create OUT_DIR if needed, lock it and read its manifest."""
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            manifest = cls(out_dir)
            manifest._lock()
            manifest._load()
            manifest._fh = manifest.path.open("ab")
        except OSError as exc:
            raise ManifestError(f"cannot use {out_dir}: {exc.strerror or exc}") from exc
        return manifest

    def _lock(self) -> None:
        self._lock_fh = (self.out_dir / LOCK_NAME).open("wb")
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_fh.close()
            self._lock_fh = None
            raise ManifestError(
                f"{self.out_dir} is in use by another `litrag fetch` (lock {LOCK_NAME})"
            ) from None

    def close(self) -> None:
        """Flush, close and unlock."""
        if self._fh:
            self._fh.close()
            self._fh = None
        if self._lock_fh:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------- reading

    @classmethod
    def parse(cls, out_dir: Path, data: bytes) -> Manifest:
        """The state ``data`` (manifest lines) describes; nothing is locked, opened or written."""
        manifest = cls(out_dir)
        manifest._read(data)
        return manifest

    def _load(self) -> None:
        # a compaction that crashed before its rename left the old manifest whole: drop the copy
        (self.out_dir / COMPACT_NAME).unlink(missing_ok=True)
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            # a torn last line from a crash mid-write: cut it off so appends start clean
            log.warning(
                "%s: ignoring an incomplete last line (%d bytes)", self.path, len(data) - end
            )
            with self.path.open("r+b") as fh:
                fh.truncate(end)
        self._read(data[:end])

    def _read(self, data: bytes) -> None:
        for n, line in enumerate(data.splitlines(), 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
                self._apply(event)
            except (ValueError, KeyError, TypeError) as exc:
                self.corrupt_lines += 1
                log.warning("%s line %d unreadable, ignored: %s", self.path, n, exc)

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "run":
            self.runs[event["run"]] = Run(
                event["run"],
                event["key"],
                event["source"],
                event["started"],
                event["search"],
                full=bool(event.get("full", False)),
            )
        elif kind == "plan":
            run = self.runs[event["run"]]
            run.plan = [str(i) for i in event["ids"]]
            run.plan_listed = "listed" in event
            run.listed = [str(i) for i in event.get("listed", [])]
        elif kind == "cursor":
            run = self.runs[event["run"]]
            run.cursor = dict(event["cursor"])
            run.listed.extend(str(i) for i in event.get("ids", []))
        elif kind == "done":
            run = self.runs[event["run"]]
            run.finished = str(event["finished"])
            run.counts = dict(event.get("counts", {}))
        elif kind == "scope":
            self.scopes.setdefault(event["scope"], set()).update(str(i) for i in event["ids"])
        elif kind == "handled":  # written by compaction: what an unfinished run had done
            self.runs[event["run"]].handled.update(str(i) for i in event["ids"])
        elif kind == "record":
            self._apply_record(Record(**{k: v for k, v in event.items() if k != "type"}))
        else:
            raise ValueError(f"unknown event type {kind!r}")

    def _apply_record(self, record: Record) -> None:
        if record.status not in STATUSES:
            raise ValueError(f"unknown record status {record.status!r}")
        key = (record.source, record.id)
        self.latest[key] = record
        if record.status in HAVE:
            self.files[key] = record
        elif record.status == "gone":
            self.files.pop(key, None)
        run = self.runs.get(record.run)
        if run is not None:
            self.scopes.setdefault(run.scope, set()).add(record.id)
            if record.status != "failed":
                run.handled.add(record.id)

    def unfinished(self, key: str) -> Run | None:
        """The latest run for ``key`` if it did not finish (to be resumed)."""
        runs = [r for r in self.runs.values() if r.key == key]
        return runs[-1] if runs and not runs[-1].done else None

    def last_done(self, key: str) -> Run | None:
        """The latest finished run for ``key``."""
        done = [r for r in self.runs.values() if r.key == key and r.done]
        return done[-1] if done else None

    def have(self, source: str, doc_id: str) -> Record | None:
        """The last record of a document whose file is complete, if any."""
        return self.files.get((source, doc_id))

    def owns(self, scope: str, doc_id: str) -> bool:
        """Whether a run of the query ``scope`` has recorded ``doc_id``."""
        return doc_id in self.scopes.get(scope, ())

    # ---------------------------------------------------------------------------- writing

    def _append(self, event: dict[str, Any]) -> None:
        if self._fh is None:
            raise ManifestError(f"{self.path} is closed")
        line = encode(event)
        try:
            self._fh.write(line)
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as exc:
            raise ManifestError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        self._apply(event)

    def start_run(
        self, key: str, source: str, search: dict[str, Any], *, full: bool = False
    ) -> Run:
        """Record the start of a run and return it."""
        run_id = uuid.uuid4().hex[:12]
        event = {"type": "run", "run": run_id, "key": key, "source": source}
        self._append({**event, "started": now_iso(), "search": search, "full": full})
        return self.runs[run_id]

    def set_plan(self, run: Run, ids: list[str], listed: list[str] | None = None) -> None:
        """Record the ids ``run`` will fetch and, if it has it, the query's complete id list."""
        event: dict[str, Any] = {"type": "plan", "run": run.run, "ids": ids}
        if listed is not None:
            event["listed"] = listed
        self._append(event)

    def set_cursor(self, run: Run, cursor: dict[str, Any], ids: list[str]) -> None:
        """Record how far ``run`` has got (e.g. the next page token) and the ids of the page."""
        self._append({"type": "cursor", "run": run.run, "cursor": cursor, "ids": ids})

    def add(self, record: Record) -> None:
        """Record one document."""
        self._append({"type": "record", **asdict(record)})

    def finish(self, run: Run, counts: dict[str, int]) -> None:
        """Record that ``run`` finished."""
        self._append({"type": "done", "run": run.run, "finished": now_iso(), "counts": counts})

    def replace_with(self, data: bytes) -> None:
        """Make ``data`` the manifest, crash-safe: write it to a temporary file, fsync, rename
        over the old one, fsync the folder. A crash leaves the old manifest or the new one,
        whole; the appends go on in the new one. The caller checks that ``data`` holds the same
        state (``compact.state``)."""
        if self._fh is None:
            raise ManifestError(f"{self.path} is closed")
        tmp = self.out_dir / COMPACT_NAME
        try:
            with tmp.open("wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            self._fh.close()
            self._fh = None
            os.replace(tmp, self.path)
            _fsync_dir(self.out_dir)
            self._fh = self.path.open("ab")
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise ManifestError(f"cannot compact {self.path}: {exc.strerror or exc}") from exc
        finally:
            if self._fh is None:  # the rename failed: appends go on in the old manifest
                self._fh = self.path.open("ab")


def encode(event: dict[str, Any]) -> bytes:
    """One manifest line."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a hidden temporary file and a rename (never half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)  # the rename itself survives a power loss before the record
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ManifestError(f"cannot write {path}: {exc.strerror or exc}") from exc


__all__ = [
    "COMPACT_NAME",
    "HAVE",
    "MANIFEST_NAME",
    "Manifest",
    "ManifestError",
    "Record",
    "Run",
    "Status",
    "encode",
    "now_iso",
    "scope_of",
    "sha256",
    "write_atomic",
]
