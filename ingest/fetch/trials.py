"""ClinicalTrials.gov API v2: one ``NCT<id>.json`` file per study.

``GET /studies?query.term=…&filter.overallStatus=…&pageSize=…&countTotal=true&format=json``,
followed with ``pageToken`` while the page gives a ``nextPageToken``. Each page holds the full
studies, so the listing is the download; only studies whose content changed are written (sha256;
the version recorded is ``lastUpdatePostDate``). A rerun lists only the studies updated since the
last finished run of the query began (``filter.advanced=AREA[LastUpdatePostDate]RANGE[…,MAX]``,
a day early); ``full`` reads the complete listing, and at its end the studies it lacks are
``gone``. The next page token (and the ids of the pages read) is the resume cursor.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Any

from ingest.fetch.base import Job, SourceError, incremental_since, safe_id
from ingest.fetch.manifest import Run

log = logging.getLogger(__name__)

NAME = "trials"
STATUSES = (
    "ACTIVE_NOT_RECRUITING",
    "COMPLETED",
    "ENROLLING_BY_INVITATION",
    "NOT_YET_RECRUITING",
    "RECRUITING",
    "SUSPENDED",
    "TERMINATED",
    "WITHDRAWN",
    "AVAILABLE",
    "NO_LONGER_AVAILABLE",
    "TEMPORARILY_NOT_AVAILABLE",
    "APPROVED_FOR_MARKETING",
    "WITHHELD",
    "UNKNOWN",
)


def normalise_status(value: str) -> str:
    """'active, not recruiting' → ACTIVE_NOT_RECRUITING; ValueError naming the valid values."""
    norm = "_".join(value.replace(",", " ").replace("-", " ").upper().split())
    if norm not in STATUSES:
        raise ValueError(f"unknown trial status {value!r}; one of: {', '.join(STATUSES)}")
    return norm


def _study_id(study: Any, page: int) -> str:
    try:
        nct = study["protocolSection"]["identificationModule"]["nctId"]
    except (KeyError, TypeError):
        raise SourceError(
            f"ClinicalTrials.gov page {page}: a study without protocolSection."
            "identificationModule.nctId"
        ) from None
    return safe_id(str(nct), "NCT number")


def _version(study: dict[str, Any]) -> str | None:
    status = study["protocolSection"].get("statusModule") or {}
    value = (status.get("lastUpdatePostDateStruct") or {}).get("date")
    return str(value) if value else None


def _date_filter(day: date) -> str:
    return f"AREA[LastUpdatePostDate]RANGE[{day.isoformat()},MAX]"


def _read_page(job: Job, url: str, params: dict[str, str], page: int) -> dict[str, Any]:
    response = job.client.request("GET", url, group="ctgov", params=params)
    try:
        data = response.json()
        if not isinstance(data["studies"], list):
            raise TypeError("'studies' is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        text = " ".join(response.text[:200].split())
        raise SourceError(
            f"ClinicalTrials.gov page {page} ({response.url}): not a studies page ({exc}); "
            f"it begins {text!r}"
        ) from None
    return dict(data)


def _start(
    job: Job, key: str, query: str, statuses: list[str], since: date | None, full: bool
) -> Run:
    params = {"query.term": query, "pageSize": str(job.settings.ctgov_page_size), "format": "json"}
    if statuses:
        params["filter.overallStatus"] = ",".join(statuses)
    last = None if full else job.manifest.last_done(key)
    day = incremental_since(last.started, since) if last else since
    if day:
        params["filter.advanced"] = _date_filter(day)
    job.stats.search = f"updated since {day}" if day else "complete listing"
    return job.manifest.start_run(key, NAME, params, full=full)


def run_trials(
    job: Job,
    query: str,
    statuses: list[str],
    since: date | None,
    max_records: int | None,
    *,
    full: bool = False,
) -> None:
    """Page through the studies (or resume at the saved page), storing each changed study."""
    key = f"{NAME}|{query}|status={','.join(sorted(statuses))}|since={since or ''}"
    run = job.manifest.unfinished(key)
    if run is not None and full and not run.full:
        run = None  # --full asks for more than the unfinished run lists: start a new one
    token: str | None = None
    page = 1
    if run is not None:
        job.stats.resumed = bool(run.cursor)
        job.stats.search = "as the run began"
        token = run.cursor.get("page_token")
        page = int(run.cursor.get("page", 1))
        log.info("resuming run %s at page %d", run.run, page)
    else:
        run = _start(job, key, query, statuses, since, full)
    # a page token belongs to the query it came from: a resumed run asks what it asked at first
    params = {str(k): str(v) for k, v in run.search.items()}
    total = run.cursor.get("total")
    url = f"{job.settings.ctgov_url.rstrip('/')}/studies"
    stored = 0
    while True:
        query_params = dict(params)
        if token:
            query_params["pageToken"] = token
        else:
            query_params["countTotal"] = "true"
        data = _read_page(job, url, query_params, page)
        if isinstance(data.get("totalCount"), int):
            total = data["totalCount"]
        studies = data["studies"]
        job.stats.listed += len(studies)
        ids = []
        for study in studies:
            if max_records is not None and stored >= max_records:
                return  # cut by --max: the run stays open and resumes at this page
            nct = _study_id(study, page)
            ids.append(nct)
            body = json.dumps(study, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
            status = job.store(
                run, NAME, nct, f"{nct}.json", body, _version(study), record_unchanged=False
            )
            stored += status != "unchanged"
        token = data.get("nextPageToken")
        if not token:
            break
        page += 1
        job.manifest.set_cursor(run, {"page_token": token, "page": page, "total": total}, ids)
    job.finish(run, _listing(job, run, ids, total))


def _listing(job: Job, run: Run, last_page: list[str], total: object) -> set[str] | None:
    """The complete listing, or None: a date filter, or fewer studies than ``totalCount`` said
    (the listing changed while it was paged), and nothing is marked gone."""
    if "filter.advanced" in run.search:
        return None
    if run.cursor and "total" not in run.cursor:
        return None  # resumed from a cursor written before cursors kept their pages' ids
    listing = {*run.listed, *last_page}
    if isinstance(total, int) and len(listing) < total:
        job.stats.warnings.append(
            f"ClinicalTrials.gov listed {len(listing)} studies but counted {total}; "
            "nothing is marked gone this time"
        )
        return None
    return listing
