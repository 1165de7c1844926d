"""Documents removed at the source: ids a query's complete listing no longer returns.

Only a run that read the query's *complete* listing marks anything gone, and only at its end (an
interrupted or ``--max``-limited run never does). A document is a candidate when a run of the
same query (:func:`~ingest.fetch.manifest.scope_of`) recorded it and its last record is not
``gone`` already; a document another query into the same OUT_DIR also recorded is left alone
(that query may still list it). Files stay where they are unless ``--prune`` moves them into
``OUT_DIR/.gone/`` (hidden: ``litrag ingest OUT_DIR`` skips it).
"""

from __future__ import annotations

import os
from pathlib import Path

from ingest.fetch.manifest import HAVE, Manifest, ManifestError, Record, Run

GONE_DIR = ".gone"


def gone_ids(manifest: Manifest, run: Run, listing: set[str]) -> list[str]:
    """The ids ``run``'s query recorded that ``listing`` (its complete listing) lacks."""
    others: set[str] = set()
    for scope, ids in manifest.scopes.items():
        if scope != run.scope and scope.startswith(f"{run.source}|"):
            others |= ids
    own = manifest.scopes.get(run.scope, set())
    found = []
    for doc_id in sorted(own - listing - others):
        record = manifest.latest.get((run.source, doc_id))
        if record is not None and record.status != "gone":
            found.append(doc_id)
    return found


def unpruned(manifest: Manifest, run: Run) -> list[Record]:
    """Gone records of ``run``'s query whose file is still outside ``.gone/``."""
    own = manifest.scopes.get(run.scope, set())
    return [
        r
        for (source, doc_id), r in manifest.latest.items()
        if source == run.source
        and doc_id in own
        and r.status == "gone"
        and r.file
        and not r.file.startswith(f"{GONE_DIR}/")
    ]


def last_file(manifest: Manifest, source: str, doc_id: str) -> Record | None:
    """The document's last record with a file (a ``gone`` one keeps naming its file)."""
    latest = manifest.latest.get((source, doc_id))
    if latest is not None and latest.status == "gone":
        return latest if latest.file else None
    have = manifest.have(source, doc_id)
    return have if have is not None and have.status in HAVE else None


def move_to_gone(out_dir: Path, file: str) -> str | None:
    """Move ``OUT_DIR/file`` into ``OUT_DIR/.gone/``; its new name, or None if it was missing."""
    src = out_dir / file
    if not src.is_file():
        return None
    dest = out_dir / GONE_DIR / Path(file).name
    try:
        dest.parent.mkdir(exist_ok=True)
        os.replace(src, dest)
    except OSError as exc:
        raise ManifestError(f"cannot move {src} to {dest}: {exc.strerror or exc}") from exc
    return f"{GONE_DIR}/{dest.name}"


__all__ = ["GONE_DIR", "gone_ids", "last_file", "move_to_gone", "unpruned"]
