"""ClinicalTrials.gov API v2: one ``NCT<id>.json`` file per study.

``GET /studies?query.term=…&filter.overallStatus=…&pageSize=…&countTotal=true&format=json``,
followed with ``pageToken`` while the page gives a ``nextPageToken``. Each page holds the full
studies, so the listing is the download: a rerun reads the pages again and writes only studies
whose content changed (sha256; the version recorded is ``lastUpdatePostDate``). The next page
token is the resume cursor.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Any

from ingest.fetch.base import Job, SourceError, safe_id

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


def run_trials(
    job: Job, query: str, statuses: list[str], since: date | None, max_records: int | None
) -> None:
    """Page through the studies (or resume at the saved page), storing each changed study."""
    key = f"{NAME}|{query}|status={','.join(sorted(statuses))}|since={since or ''}"
    run = job.manifest.unfinished(key)
    token: str | None = None
    page = 1
    if run is not None:
        job.stats.resumed = bool(run.cursor)
        token = run.cursor.get("page_token")
        page = int(run.cursor.get("page", 1))
        log.info("resuming run %s at page %d", run.run, page)
    params = {"query.term": query, "pageSize": str(job.settings.ctgov_page_size), "format": "json"}
    if statuses:
        params["filter.overallStatus"] = ",".join(statuses)
    if since:
        params["filter.advanced"] = f"AREA[LastUpdatePostDate]RANGE[{since.isoformat()},MAX]"
    if run is None:
        run = job.manifest.start_run(key, NAME, dict(params))
    url = f"{job.settings.ctgov_url.rstrip('/')}/studies"
    stored = 0
    while True:
        query_params = dict(params)
        if token:
            query_params["pageToken"] = token
        else:
            query_params["countTotal"] = "true"
        response = job.client.request("GET", url, group="ctgov", params=query_params)
        try:
            data = response.json()
            studies = data["studies"]
            if not isinstance(studies, list):
                raise TypeError("'studies' is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            text = " ".join(response.text[:200].split())
            raise SourceError(
                f"ClinicalTrials.gov page {page} ({response.url}): not a studies page ({exc}); "
                f"it begins {text!r}"
            ) from None
        job.stats.listed += len(studies)
        for study in studies:
            if max_records is not None and stored >= max_records:
                return  # cut by --max: the run stays open and resumes at this page
            nct = _study_id(study, page)
            body = json.dumps(study, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
            status = job.store(
                run, NAME, nct, f"{nct}.json", body, _version(study), record_unchanged=False
            )
            stored += status != "unchanged"
        token = data.get("nextPageToken")
        if not token:
            break
        page += 1
        job.manifest.set_cursor(run, {"page_token": token, "page": page})
    job.manifest.finish(run, job.stats.counts)
    job.stats.finished = True
