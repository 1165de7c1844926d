"""A real HTTP server (``ThreadingHTTPServer`` in a thread) that replays recorded API responses.

Bodies come from /work/shared/data/api (see its README for where each was recorded). They are
not one coherent session, so where a test needs consistency the server *derives* it from real
recorded responses, and each derivation is named here:

- esearch (PMC, PubMed): the recorded ``esearch_pmc_ecology_retmax200.xml`` /
  ``esearch_pubmed_cancer_usehistory.xml`` with ``Count``, ``RetMax``, ``RetStart`` and
  ``IdList`` rewritten to list the ids of the catalog (the articles whose efetch was recorded),
  filtered by ``mindate`` when ``datetype=mdat`` (each catalog entry carries a modification date)
  and paged by ``retstart``/``retmax``;
- efetch: the recorded ``<article>`` / ``<PubmedArticle>`` elements of the requested ids, byte for
  byte, inside the recorded set's own header (several recorded files combined into one set);
- PMC OA service: the recorded ``idIsNotOpenAccess`` answer for PMC3040717 (as recorded); for
  an id in ``oa_open``, the recorded ``from=`` answer (the only recorded ``<record>``) with its
  record id replaced by the asked id;
- ids in ``unfetchable`` are appended to esearch's IdList but efetch does not return them;
- CT.gov: the two recorded Phelan-McDermid pages, chained by the recorded ``nextPageToken``;
  page 2's own ``nextPageToken`` is removed so the listing ends there (no page 3 was recorded)
  unless ``ctgov_end_after_page2`` is False. ``totalCount`` is rewritten to the number of
  studies served (the recorded pages were trimmed to 10 of 21). A ``filter.advanced`` of the form
  ``AREA[LastUpdatePostDate]RANGE[date,MAX]`` is answered with one page (no token) of the
  recorded studies of both pages whose ``lastUpdatePostDateStruct.date`` is in range; the
  recorded studies have none (the search asked for other fields), so each counts as updated on
  ``OLD`` unless ``update_study`` replaced it with a derived study updated today. Studies in
  ``removed_studies`` are left out of every page (a study withdrawn at the source).

Nothing is gzip-encoded (the recorded bodies are already decoded). Every request is logged with
its arrival time; ``inject`` makes the first requests of a route fail (429 with the recorded NCBI
rate-limit body, 500/503, or a dropped connection).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.conftest import SHARED_DATA

API = SHARED_DATA / "api"
EUTILS = API / "eutils"
CTGOV = API / "ctgov-v2"

PMC_FILES = ("efetch_pmc_8435807.xml", "efetch_pmc_3299399.xml", "efetch_pmc_3040717.xml")
PUBMED_FILES = (
    "efetch_pubmed_12091962_9997.xml",
    "efetch_pubmed_11748933_11700088.xml",
    "efetch_pubmed_1234567.xml",
    "efetch_pubmed_22351513.xml",
    "efetch_pubmed_29915538.xml",
)
#: An old modification date for every catalog entry: a rerun's mdat search does not list it.
OLD = date(2021, 1, 1)


@dataclass
class Request:
    """One request as the server saw it."""

    t: float  # time.monotonic() at arrival
    method: str
    route: str
    params: dict[str, str]


@dataclass
class Entry:
    """A catalog document: its recorded bytes and the modification date esearch filters on."""

    body: bytes
    mdat: date = OLD


@dataclass
class Replay:
    """State of the replay server; ``url`` is set once it listens."""

    url: str = ""
    log: list[Request] = field(default_factory=list)
    catalogs: dict[str, dict[str, Entry]] = field(default_factory=dict)
    esearch_files: dict[str, Path] = field(default_factory=dict)  # term -> recorded body
    failures: dict[str, list[str]] = field(default_factory=dict)
    retry_after: str | None = None
    ctgov_end_after_page2: bool = True
    study_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    removed_studies: set[str] = field(default_factory=set)
    ctgov_total_offset: int = 0  # added to totalCount: a listing that changed while paged
    oa_open: set[str] = field(default_factory=set)  # PMC ids the OA service calls open access
    unfetchable: dict[str, list[str]] = field(default_factory=dict)  # listed, efetch omits them
    # ids esearch stops listing after its first page (a record withdrawn while a search is paged)
    withdrawn_after_first_page: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def inject(self, route: str, *kinds: str) -> None:
        """The next requests of ``route`` answer ``kinds`` in turn: '429', '500', '503', 'drop'
        or 'ok' (served normally)."""
        self.failures.setdefault(route, []).extend(kinds)

    def requests(self, route: str) -> list[Request]:
        """The logged requests of one route."""
        return [r for r in self.log if r.route == route]

    def modify(self, db: str, uid: str, change: Callable[[bytes], bytes] | None = None) -> None:
        """Mark a catalog document modified today, its body changed by ``change`` if given."""
        entry = self.catalogs[db][uid]
        entry.mdat = date.today()
        if change:
            entry.body = change(entry.body)

    def update_study(self, study: dict[str, Any], status: str) -> str:
        """Serve a recorded study with ``overallStatus`` edited and its last update posted today
        (derived); returns its NCT id."""
        changed = json.loads(json.dumps(study))
        module = changed["protocolSection"]["statusModule"]
        module["overallStatus"] = status
        module["lastUpdatePostDateStruct"] = {"date": date.today().isoformat(), "type": "ACTUAL"}
        nct = str(changed["protocolSection"]["identificationModule"]["nctId"])
        self.study_overrides[nct] = changed
        return nct


def _split(path: Path, tag: bytes) -> tuple[bytes, list[bytes]]:
    """The header before the first ``<tag`` and every ``<tag …>…</tag>`` segment, as bytes."""
    data = path.read_bytes()
    pattern = re.compile(rb"<" + tag + rb"[ >].*?</" + tag + rb">", flags=re.S)
    first = pattern.search(data)
    assert first, path
    return data[: first.start()], pattern.findall(data)


def _catalogs() -> tuple[dict[str, dict[str, Entry]], dict[str, bytes]]:
    catalogs: dict[str, dict[str, Entry]] = {"pmc": {}, "pubmed": {}}
    headers: dict[str, bytes] = {}
    for name in PMC_FILES:
        head, articles = _split(EUTILS / name, b"article")
        headers.setdefault("pmc", head)
        for art in articles:
            m = re.search(rb'pub-id-type="pmc(?:id)?">(?:PMC)?(\d+)<', art)
            assert m, name
            catalogs["pmc"][m.group(1).decode()] = Entry(art)
    for name in PUBMED_FILES:
        head, articles = _split(EUTILS / name, b"PubmedArticle")
        headers.setdefault("pubmed", head)
        for art in articles:
            m = re.search(rb"<PMID[^>]*>(\d+)</PMID>", art)
            assert m, name
            catalogs["pubmed"][m.group(1).decode()] = Entry(art)
    return catalogs, headers


#: PubMed's esearch refuses a retstart above this (only the first 9,999 ids of a search).
PUBMED_MAX_RETSTART = 9998


def _esearch_body(template: bytes, ids: list[str], count: int, retstart: int) -> bytes:
    id_list = b"<IdList>\n" + b"".join(b"<Id>%s</Id>\n" % i.encode() for i in ids) + b"</IdList>"
    body = re.sub(rb"<Count>\d+</Count>", b"<Count>%d</Count>" % count, template, count=1)
    body = re.sub(rb"<RetMax>\d+</RetMax>", b"<RetMax>%d</RetMax>" % len(ids), body, count=1)
    body = re.sub(
        rb"<RetStart>\d+</RetStart>", b"<RetStart>%d</RetStart>" % retstart, body, count=1
    )
    return re.sub(rb"<IdList>.*?</IdList>", id_list, body, count=1, flags=re.S)


def _ncbi_date(text: str) -> date:
    parts = [int(p) for p in text.split("/")] + [1, 1]
    return date(parts[0], parts[1], parts[2])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    replay: Replay
    headers_by_db: dict[str, bytes]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._handle(self.rfile.read(length))

    def _handle(self, form: bytes) -> None:
        t = time.monotonic()
        parts = urlsplit(self.path)
        raw = parse_qs(parts.query) | parse_qs(form.decode())
        params = {k: v[-1] for k, v in raw.items()}
        route = parts.path.rsplit("/", 1)[-1].removesuffix(".fcgi")
        state = self.replay
        with state.lock:
            state.log.append(Request(t, self.command, route, params))
            planned = state.failures.get(route)
            kind = planned.pop(0) if planned else "ok"
        if kind == "drop":
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if kind == "429":
            extra = {"Retry-After": state.retry_after} if state.retry_after else {}
            body = (EUTILS / "error_429_rate_limit_esummary.json").read_bytes()
            return self._send(429, body, "application/json", extra)
        if kind in ("500", "503"):
            return self._send(
                int(kind), b"<html><body>Service unavailable</body></html>", "text/html"
            )
        handler = {"esearch": self._esearch, "efetch": self._efetch, "oa": self._oa}.get(route)
        if route == "studies":
            handler = self._studies
        if handler is None:
            return self._send(404, b"no such route", "text/plain")
        handler(params)

    def _send(
        self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _esearch(self, p: dict[str, str]) -> None:
        state = self.replay
        term = p.get("term", "")
        for key, path in state.esearch_files.items():
            if key in term:
                return self._send(200, path.read_bytes(), "text/xml")
        db = p["db"]
        entries = state.catalogs[db]
        ids = list(entries)
        if p.get("datetype") == "mdat" and "mindate" in p:
            low, high = _ncbi_date(p["mindate"]), _ncbi_date(p["maxdate"])
            ids = [i for i in ids if low <= entries[i].mdat <= high]
        ids += state.unfetchable.get(db, [])
        start, size = int(p.get("retstart", 0)), int(p.get("retmax", 20))
        if start > 0 and db in state.withdrawn_after_first_page:
            ids.remove(state.withdrawn_after_first_page[db])
        if db == "pubmed" and start > PUBMED_MAX_RETSTART:
            # NCBI's answer, derived from the recorded <ERROR> body (esearch_pubmed's limit)
            body = re.sub(
                rb"<ERROR>.*?</ERROR>",
                b"<ERROR>Search Backend failed: Exception:\n'retstart' cannot be larger than "
                b"9998. For PubMed, ESearch can only retrieve the first 9,999 records matching "
                b"the query.</ERROR>",
                (EUTILS / "error_esearch_invalid_db_fleegle.xml").read_bytes(),
                flags=re.S,
            )
            return self._send(200, body, "text/xml")
        template = (
            EUTILS / "esearch_pmc_ecology_retmax200.xml"
            if db == "pmc"
            else EUTILS / "esearch_pubmed_cancer_usehistory.xml"
        ).read_bytes()
        body = _esearch_body(template, ids[start : start + size], len(ids), start)
        self._send(200, body, "text/xml")

    def _efetch(self, p: dict[str, str]) -> None:
        db = p["db"]
        entries = self.replay.catalogs[db]
        found = [entries[i].body for i in p["id"].split(",") if i in entries]
        root = b"pmc-articleset" if db == "pmc" else b"PubmedArticleSet"
        body = self.headers_by_db[db] + b"\n".join(found) + b"\n</" + root + b">\n"
        self._send(200, body, "text/xml")

    def _oa(self, p: dict[str, str]) -> None:
        pmcid = p.get("id", "")
        if pmcid in self.replay.oa_open:
            body = (API / "pmc-oa" / "oa_fcgi_from_date_resumption_trimmed.xml").read_bytes()
            return self._send(200, body.replace(b"PMC3405500", pmcid.encode()), "text/xml")
        if pmcid == "PMC3040717":
            body = (API / "pmc-oa" / "oa_fcgi_PMC3040717_idIsNotOpenAccess.xml").read_bytes()
            return self._send(200, body, "text/xml")
        self._send(404, b"not recorded", "text/plain")

    def _studies(self, p: dict[str, str]) -> None:
        state = self.replay
        page1 = json.loads((CTGOV / "studies_page1_phelan_pageSize5.json").read_bytes())
        page2 = json.loads((CTGOV / "studies_page2_phelan_pageToken.json").read_bytes())
        if state.ctgov_end_after_page2:
            page2.pop("nextPageToken")
        token = p.get("pageToken")
        if token is None:
            data = page1
        elif token == page1["nextPageToken"]:
            data = page2
        else:
            return self._send(400, f"unknown pageToken {token}".encode(), "text/plain")
        try:
            since = _range_start(p.get("filter.advanced"))
        except ValueError as exc:
            return self._send(400, str(exc).encode(), "text/plain")
        if since is not None:  # one page of the recorded studies updated in range
            data = {"studies": page1["studies"] + page2["studies"]}
        studies = []
        for study in data["studies"]:
            nct = study["protocolSection"]["identificationModule"]["nctId"]
            study = state.study_overrides.get(nct, study)
            if nct not in state.removed_studies and (since is None or _updated(study) >= since):
                studies.append(study)
        data["studies"] = studies
        if "countTotal" in p:
            listing = [*page1["studies"], *page2["studies"]] if since is None else studies
            data["totalCount"] = state.ctgov_total_offset + sum(
                s["protocolSection"]["identificationModule"]["nctId"] not in state.removed_studies
                for s in listing
            )
        self._send(200, json.dumps(data).encode(), "application/json")


def _range_start(advanced: str | None) -> date | None:
    if advanced is None:
        return None
    m = re.fullmatch(r"AREA\[LastUpdatePostDate\]RANGE\[(\d{4}-\d{2}-\d{2}),MAX\]", advanced)
    if not m:
        raise ValueError(f"the replay server does not know filter.advanced={advanced!r}")
    return date.fromisoformat(m.group(1))


def _updated(study: dict[str, Any]) -> date:
    posted = study["protocolSection"].get("statusModule", {}).get("lastUpdatePostDateStruct")
    return date.fromisoformat(posted["date"]) if posted else OLD


def start() -> tuple[Replay, ThreadingHTTPServer]:
    """A running replay server on 127.0.0.1 (ephemeral port)."""
    catalogs, headers = _catalogs()
    state = Replay(catalogs=catalogs)
    handler = type("Handler", (_Handler,), {"replay": state, "headers_by_db": headers})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return state, server
