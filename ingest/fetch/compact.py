"""Compaction: the manifest rewritten to the state later runs read, when it has grown.

The append-only manifest grows with every run: a run line, a plan (E-utilities) or cursors
(CT.gov), records, done. At the end of a finished run, when the file is more than ``FACTOR``
times the size of its compacted form, it is replaced (crash-safe, see
:meth:`Manifest.replace_with`) by: per query key, the last finished run (``run`` and ``done``)
and the unfinished run a later command resumes (with its plan, or one cursor carrying every id
listed so far, and the ids it has handled); a ``scope`` line per query with the ids its runs
recorded; per document its last record, preceded by its last record with a file when that is an
older one. The compacted bytes
are read back and must give the same :func:`state` before they replace anything.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from ingest.fetch.manifest import Manifest, Record, Run, encode

log = logging.getLogger(__name__)

#: Compact when the manifest is more than this many times its compacted size.
FACTOR = 2.0


def state(manifest: Manifest) -> dict[str, Any]:
    """Everything later runs read from a manifest, comparable with ``==``."""
    runs: dict[str, Any] = {}
    for key in dict.fromkeys(r.key for r in manifest.runs.values()):
        last, open_run = manifest.last_done(key), manifest.unfinished(key)
        runs[key] = {
            "last_done": last and (last.run, last.started, last.finished, last.full, last.counts),
            "unfinished": open_run
            and (
                open_run.run,
                open_run.started,
                open_run.search,
                open_run.full,
                open_run.plan,
                open_run.cursor,
                open_run.listed,
                open_run.plan_listed,
                sorted(open_run.handled),
            ),
        }
    return {
        "latest": dict(manifest.latest),
        "files": dict(manifest.files),
        "scopes": {k: v for k, v in manifest.scopes.items() if v},
        "runs": runs,
    }


def _kept_runs(manifest: Manifest) -> list[Run]:
    last: dict[str, Run] = {}
    latest: dict[str, Run] = {}
    for run in manifest.runs.values():
        latest[run.key] = run
        if run.done:
            last[run.key] = run
    keep = {id(r) for r in last.values()} | {id(r) for r in latest.values() if not r.done}
    return [r for r in manifest.runs.values() if id(r) in keep]


def _record(record: Record) -> bytes:
    return encode({"type": "record", **asdict(record)})


def compacted(manifest: Manifest) -> bytes:
    """The compacted manifest: the same state in as few lines as possible."""
    lines: list[bytes] = []
    for run in _kept_runs(manifest):
        event = {"type": "run", "run": run.run, "key": run.key, "source": run.source}
        lines.append(
            encode({**event, "started": run.started, "search": run.search, "full": run.full})
        )
        if run.done:
            lines.append(
                encode(
                    {"type": "done", "run": run.run, "finished": run.finished, "counts": run.counts}
                )
            )
            continue
        if run.plan is not None:
            plan: dict[str, Any] = {"type": "plan", "run": run.run, "ids": run.plan}
            if run.plan_listed:
                plan["listed"] = run.listed
            lines.append(encode(plan))
        if run.cursor or (run.listed and not run.plan_listed):
            listed = [] if run.plan_listed else run.listed
            lines.append(
                encode({"type": "cursor", "run": run.run, "cursor": run.cursor, "ids": listed})
            )
        if run.handled:
            # what it did is read back from here: its records may be superseded by other runs'
            lines.append(encode({"type": "handled", "run": run.run, "ids": sorted(run.handled)}))
    for scope, owned in manifest.scopes.items():
        if owned:
            lines.append(encode({"type": "scope", "scope": scope, "ids": sorted(owned)}))
    for key, record in manifest.latest.items():
        with_file = manifest.files.get(key)
        if with_file is not None and with_file is not record:
            lines.append(_record(with_file))
        lines.append(_record(record))
    return b"".join(lines)


def maybe_compact(manifest: Manifest, factor: float = FACTOR) -> tuple[int, int] | None:
    """Compact the manifest if it is more than ``factor`` times its compacted size.

    Returns (lines before, lines after), or None when it was left as it is.
    """
    data = compacted(manifest)
    if manifest.path.stat().st_size <= factor * len(data):
        return None
    before = manifest.path.read_bytes()
    if state(Manifest.parse(manifest.out_dir, data)) != state(manifest):
        # never expected; keeping the longer manifest is always safe
        log.warning(
            "%s: the compacted manifest differs when read back; not compacted", manifest.path
        )
        return None
    manifest.replace_with(data)
    return before.count(b"\n"), data.count(b"\n")


__all__ = ["FACTOR", "compacted", "maybe_compact", "state"]
