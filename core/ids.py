"""Deterministic document ids, chunk ids and source URLs built only from identifiers."""

from __future__ import annotations

import hashlib
import re
import uuid
from urllib.parse import quote, unquote

from core.schemas import Identifiers

#: Fixed namespace so chunk ids are identical across machines and runs.
CHUNK_NAMESPACE = uuid.UUID("6f1c2a8e-5b7d-4c1e-9a3f-2d8b7e4c1a90")

_DOI_RE = re.compile(r"\b(10\.\d{4,9}/[^\s\"'<>]+)", re.IGNORECASE)
_NCT_RE = re.compile(r"^NCT[0-9]{8}$")
#: An NCT number inside text, with no digit glued to it: ``NCT01234567``, ``NCT 01234567``
#: (also a no-break space or a hyphen), ``ClinicalTrials.govNCT01234567`` (MEDLINE), lower-case
#: ``nct…`` only as a word of its own. ASCII digits only: other scripts' digits are not ids.
NCT_IN_TEXT = re.compile(r"(?:(?<!\d)NCT|(?<![A-Za-z\d])nct)[ \u00a0-]?(\d{8})(?!\d)", re.ASCII)
_PMCID_RE = re.compile(r"^PMC\d+$", re.ASCII)


def normalize_doi(raw: str) -> str | None:
    """Lower-cased DOI without resolver prefix or trailing punctuation; None if not a DOI."""
    text = unquote(raw.strip())
    m = _DOI_RE.search(text)
    if not m:
        return None
    return m.group(1).rstrip(".,;:)]}").lower()


def find_doi(text: str) -> str | None:
    """First DOI mentioned in free text (a PDF's first page, a file name)."""
    return normalize_doi(text) if _DOI_RE.search(unquote(text)) else None


def normalize_pmcid(raw: str) -> str | None:
    """'PMC123' from '123', 'pmc123' or 'PMC123'; None when not a PMCID."""
    s = raw.strip().upper()
    if s.isascii() and s.isdigit():
        s = "PMC" + s
    return s if _PMCID_RE.match(s) else None


def normalize_nct(raw: str) -> str | None:
    """Upper-cased NCT number, or None when malformed."""
    s = raw.strip().upper()
    return s if _NCT_RE.match(s) else None


def find_ncts(text: str) -> list[str]:
    """NCT numbers mentioned in ``text``, upper-cased, deduplicated, in order of appearance."""
    return list(dict.fromkeys(f"NCT{m.group(1)}" for m in NCT_IN_TEXT.finditer(text)))


def doc_id_for(ids: Identifiers, content: bytes | str | None = None, *, prefer: str = "") -> str:
    """Stable document id from identifiers, in order nct, pmc, pmid, doi; else a content hash.

    ``prefer`` ('pmid') lets MEDLINE citations be keyed by PMID even when a PMCID is known, so an
    abstract and the full-text article stay two documents.
    """
    if ids.nct_id:
        return f"nct:{ids.nct_id}"
    if prefer == "pmid" and ids.pmid:
        return f"pmid:{ids.pmid}"
    if ids.pmcid:
        return f"pmc:{ids.pmcid}"
    if ids.pmid:
        return f"pmid:{ids.pmid}"
    if ids.doi:
        return f"doi:{ids.doi}"
    if content is None:
        raise ValueError("a document without identifiers needs its content for a hash id")
    data = content.encode() if isinstance(content, str) else content
    return f"sha256:{hashlib.sha256(data).hexdigest()[:32]}"


def chunk_id(doc_id: str, ordinal: int) -> str:
    """Point id of a chunk: uuid5 of "doc_id#ordinal"; re-ingestion overwrites, never duplicates."""
    return str(uuid.uuid5(CHUNK_NAMESPACE, f"{doc_id}#{ordinal}"))


def source_url(ids: Identifiers) -> str | None:
    """The canonical URL of a document, built from its identifiers only (NCT > PMC > PMID > DOI)."""
    urls = all_urls(ids)
    for kind in ("clinicaltrials", "pmc", "pubmed", "doi"):
        if kind in urls:
            return urls[kind]
    return None


def all_urls(ids: Identifiers) -> dict[str, str]:
    """Every URL the identifiers support, keyed by kind (pmc, pubmed, doi, clinicaltrials)."""
    urls: dict[str, str] = {}
    if ids.pmcid:
        urls["pmc"] = f"https://pmc.ncbi.nlm.nih.gov/articles/{quote(ids.pmcid, safe='')}/"
    if ids.pmid:
        urls["pubmed"] = f"https://pubmed.ncbi.nlm.nih.gov/{quote(ids.pmid, safe='')}/"
    if ids.doi:
        # parentheses are legal in DOIs (10.1016/S0140-6736(20)30183-5) but end a Markdown link
        # target: encoded, a DOI read from a document can never break out of a link it is put in
        urls["doi"] = f"https://doi.org/{quote(ids.doi, safe='/:;')}"
    if ids.nct_id:
        urls["clinicaltrials"] = f"https://clinicaltrials.gov/study/{quote(ids.nct_id, safe='')}"
    return urls
