"""NCBI E-utilities: esearch paging, efetch batches, and the id-list run shared by PMC and PubMed.

A run lists ids with esearch (``datetype=mdat``: a record added *or modified* since the date is
listed), records that list in the manifest (the resume cursor), then fetches the ids in batches
with efetch (POST). A rerun lists only what changed since the last finished run began. A first
run, or a rerun with ``full``, also lists the query completely (no date): that list is kept with
the plan, new or missing files are fetched, and at the end the documents it lacks are ``gone``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from lxml import etree

from ingest.fetch.base import Job, SourceError, incremental_since
from ingest.fetch.manifest import Run

log = logging.getLogger(__name__)

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True, remove_blank_text=False
)


class EutilsError(SourceError):
    """E-utilities answered with an ``<ERROR>`` (or an unreadable body)."""


def parse_xml(body: bytes, what: str) -> etree._Element:
    """Parse an E-utilities XML body (no DTD, no entities, no network)."""
    try:
        return etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        text = " ".join(body[:200].decode("utf-8", "replace").split())
        raise EutilsError(f"{what}: the response is not XML ({exc}); it begins {text!r}") from None


def ncbi_params(job: Job) -> dict[str, str]:
    """tool, email and api_key, sent with every E-utilities request."""
    s = job.settings
    params = {"tool": s.tool}
    if s.email:
        params["email"] = s.email
    if s.api_key:
        params["api_key"] = s.api_key.get_secret_value()
    return params


def _ncbi_date(d: date) -> str:
    return d.strftime("%Y/%m/%d")


#: The most ids PubMed's esearch lists for one search (NCBI refuses a retstart above 9998).
PUBMED_ESEARCH_CAP = 9999


@dataclass(frozen=True, slots=True)
class SearchResult:
    """The ids esearch listed and the total it reported."""

    ids: list[str]
    count: int
    warnings: list[str]
    complete: bool  # every id the search counted was listed, and NCBI reported no ErrorList


def esearch(job: Job, db: str, term: str, mindate: date | None) -> SearchResult:
    """All ids matching ``term``, paged with retstart/retmax (``usehistory=y`` kept for NCBI)."""
    url = f"{job.settings.eutils_url.rstrip('/')}/esearch.fcgi"
    params = {**ncbi_params(job), "db": db, "term": term, "retmode": "xml", "usehistory": "y"}
    if mindate:
        tomorrow = datetime.now(UTC).date() + timedelta(days=1)
        params |= {"datetype": "mdat", "mindate": _ncbi_date(mindate)}
        params["maxdate"] = _ncbi_date(tomorrow)
    ids: list[str] = []
    warnings: list[str] = []
    count, retstart, size = 0, 0, job.settings.search_page_size
    first_count: int | None = None
    # PubMed's esearch lists at most the first 9,999 ids of a search (retstart above 9998 is an
    # <ERROR>): stop there and say so instead of failing every run of a broad query
    cap = PUBMED_ESEARCH_CAP if db == "pubmed" else None
    while True:
        want = size if cap is None else min(size, cap - retstart)
        page = {**params, "retstart": str(retstart), "retmax": str(want)}
        body = job.client.request("GET", url, group="ncbi", params=page).content
        root = parse_xml(body, f"esearch db={db}")
        error = root.findtext("ERROR")
        if error:
            raise EutilsError(f"esearch db={db} term={term!r}: NCBI error: {error.strip()}")
        for item in root.iterfind("ErrorList/*"):
            warnings.append(f"esearch: {item.tag} {(item.text or '').strip()!r}")
        try:
            count = int(root.findtext("Count") or "0")
        except ValueError:
            raise EutilsError(f"esearch db={db}: unreadable <Count> in the response") from None
        if first_count is None:
            first_count = count
        elif count != first_count:
            # each page runs the search again: ids moved between pages, some may be missing
            warnings.append(
                f"esearch: the result set changed while paging ({first_count} then {count} "
                "records); the listing may miss some: run again"
            )
            first_count = count
        got = [(e.text or "").strip() for e in root.iterfind("IdList/Id")]
        ids.extend(got)
        retstart += len(got)
        if not got or retstart >= count:
            break
        if cap is not None and retstart >= cap:
            warnings.append(
                f"esearch: PubMed lists only the first {cap} of the {count} records of a search; "
                "narrow the query (or use --since) to fetch the rest"
            )
            break
    unique = list(dict.fromkeys(ids))
    complete = retstart >= count and len(unique) >= count and not warnings
    return SearchResult(unique, count, warnings, complete)


def efetch(job: Job, db: str, ids: Sequence[str]) -> bytes:
    """The efetch XML for ``ids`` (POST, as NCBI asks for long id lists)."""
    url = f"{job.settings.eutils_url.rstrip('/')}/efetch.fcgi"
    data = {**ncbi_params(job), "db": db, "id": ",".join(ids), "retmode": "xml"}
    body = job.client.request("POST", url, group="ncbi", data=data).content
    head = body[:2000]
    if b"<ERROR>" in head or b"<error>" in head:
        root = parse_xml(body, f"efetch db={db}")
        error = root.findtext(".//ERROR") or root.findtext(".//error") or "unknown error"
        raise EutilsError(f"efetch db={db} id={','.join(ids)[:80]}: NCBI error: {error.strip()}")
    return body


@dataclass(frozen=True, slots=True)
class Item:
    """One document cut out of an efetch answer."""

    uid: str  # the E-utilities uid (PMC: digits)
    data: bytes
    version: str | None
    vet: bool = False  # ask the source's own check before keeping it (PMC: open access?)


class IdSource(Protocol):
    """What PMC and PubMed each supply to :func:`run_ids`."""

    name: str
    db: str

    def term(self, query: str) -> str:
        """The esearch term for the user's query."""
        ...

    def batch(self, job: Job) -> int:
        """Ids per efetch request."""
        ...

    def doc_id(self, uid: str) -> str:
        """The manifest id of an E-utilities uid."""
        ...

    def uid(self, doc_id: str) -> str:
        """The E-utilities uid of a manifest id."""
        ...

    def file_name(self, uid: str) -> str:
        """The file an item is written to."""
        ...

    def split(self, body: bytes) -> Iterator[Item]:
        """The documents of one efetch answer."""
        ...

    def vet(self, job: Job, item: Item) -> str | None:
        """Why an item flagged ``vet`` must not be kept, or None to keep it."""
        ...


def run_ids(
    job: Job,
    src: IdSource,
    query: str,
    since: date | None,
    max_records: int | None,
    *,
    full: bool = False,
) -> None:
    """List (or resume), fetch and store; updates ``job.stats``. Raises on network/API errors."""
    key = f"{src.name}|{query}|since={since or ''}"
    run = job.manifest.unfinished(key)
    if run is not None and full and not run.full:
        run = None  # --full asks for more than the unfinished run lists: start a new one
    if run is not None and run.plan is not None:
        job.stats.resumed = True
        job.stats.search = "complete listing" if run.plan_listed else "the run's own plan"
        remaining = [u for u in run.plan if src.doc_id(u) not in run.handled]
        log.info("resuming run %s: %d of %d ids left", run.run, len(remaining), len(run.plan))
    else:
        run, remaining = _search(job, src, key, run, query, since, full)
    job.stats.listed = len(remaining)
    cut = max_records is not None and len(remaining) > max_records
    if cut:
        remaining = remaining[:max_records]
    step = src.batch(job)
    for start in range(0, len(remaining), step):
        _fetch_batch(job, src, run, remaining[start : start + step])
    if not cut:
        listing = {src.doc_id(u) for u in run.listed} if run.plan_listed else None
        job.finish(run, listing)


def _search(
    job: Job,
    src: IdSource,
    key: str,
    run: Run | None,
    query: str,
    since: date | None,
    full: bool,
) -> tuple[Run, list[str]]:
    """Search, start the run (unless it started before its plan was recorded), record the plan."""
    full = run.full if run is not None else full
    last = job.manifest.last_done(key)
    changed_since = incremental_since(last.started, since) if last else since
    term = src.term(query)
    if run is None:
        search = {"db": src.db, "term": term, "datetype": "mdat"}
        search["mindate"] = str(changed_since or "")
        run = job.manifest.start_run(key, src.name, search, full=full)
    listing: list[str] | None = None
    if full or last is None:
        everything = esearch(job, src.db, term, since)
        job.stats.warnings.extend(everything.warnings)
        if since is None and everything.complete:
            listing = everything.ids
        wanted = everything.ids
        if listing is not None:
            job.stats.search = "complete listing"
        elif since:
            job.stats.search = _since_text(since)
        else:
            job.stats.search = "everything, but not a complete listing (see the warnings)"
        if last is not None:
            # a --full rerun fetches what changed since the last run and what is not in OUT_DIR
            changed = esearch(job, src.db, term, changed_since)
            job.stats.warnings.extend(w for w in changed.warnings if w not in job.stats.warnings)
            missing = [u for u in everything.ids if _missing(job, src, u)]
            wanted = list(dict.fromkeys([*changed.ids, *missing]))
    else:
        result = esearch(job, src.db, term, changed_since)
        job.stats.warnings.extend(result.warnings)
        wanted = result.ids
        job.stats.search = _since_text(changed_since)
    # documents that failed in an earlier run are asked for again, unless this query's complete
    # listing no longer has them (they are marked gone at the end instead)
    scope, listed = run.scope, set(listing or ())
    failed = [
        src.uid(r.id)
        for (name, _), r in job.manifest.latest.items()
        if name == src.name
        and r.status == "failed"
        and not (
            listing is not None and job.manifest.owns(scope, r.id) and src.uid(r.id) not in listed
        )
    ]
    remaining = list(dict.fromkeys([*wanted, *failed]))
    job.manifest.set_plan(run, remaining, listing)
    return run, remaining


def _missing(job: Job, src: IdSource, uid: str) -> bool:
    """Not in OUT_DIR: never recorded, gone, or its file deleted (a skipped one is not missing)."""
    latest = job.manifest.latest.get((src.name, src.doc_id(uid)))
    if latest is None or latest.status == "gone":
        return True
    have = job.manifest.have(src.name, src.doc_id(uid))
    return have is not None and not (job.out_dir / str(have.file)).is_file()


def _since_text(day: date | None) -> str:
    return f"added or changed since {day}" if day else "everything"


def _fetch_batch(job: Job, src: IdSource, run: Run, uids: list[str]) -> None:
    body = efetch(job, src.db, uids)
    items = {item.uid: item for item in src.split(body)}
    for uid in uids:
        item = items.get(uid)
        doc_id = src.doc_id(uid)
        if item is None:
            reason = f"efetch db={src.db} returned no record for id {uid}"
            job.skip(run, src.name, doc_id, reason, failed=True)
            continue
        why = src.vet(job, item) if item.vet else None
        if why:
            job.skip(run, src.name, doc_id, why, failed=False)
            continue
        name = src.file_name(uid)
        job.store(run, src.name, doc_id, name, item.data, item.version, record_unchanged=True)


__all__ = ["EutilsError", "IdSource", "Item", "efetch", "esearch", "ncbi_params", "run_ids"]
