"""PubMed: MEDLINE XML citations, one ``PMID<id>.xml`` file per citation.

esearch ``db=pubmed`` with the query as given, efetch ``db=pubmed retmode=xml`` (a
``<PubmedArticleSet>``); each ``<PubmedArticle>`` (or ``<PubmedBookArticle>``) is written in a
``<PubmedArticleSet>`` of its own, which litrag's MEDLINE parser reads. The version is the
record's ``DateRevised``.
"""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

from ingest.fetch.base import Job, safe_id
from ingest.fetch.eutils import Item, parse_xml

NAME = "pubmed"
_HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n<PubmedArticleSet>\n'
_TAIL = b"\n</PubmedArticleSet>\n"


def _revised(citation: etree._Element | None) -> str | None:
    if citation is None:
        return None
    revised = citation.find("DateRevised")
    if revised is None:
        return None
    parts = [revised.findtext(p) or "" for p in ("Year", "Month", "Day")]
    return "-".join(p.strip() for p in parts if p.strip()) or None


class PubmedSource:
    """PubMed citations through E-utilities."""

    name = NAME
    db = "pubmed"

    def term(self, query: str) -> str:
        """The query as given."""
        return query

    def batch(self, job: Job) -> int:
        """Citations per efetch."""
        return job.settings.pubmed_batch

    def doc_id(self, uid: str) -> str:
        """The PMID itself."""
        return uid

    def uid(self, doc_id: str) -> str:
        """The PMID itself."""
        return doc_id

    def file_name(self, uid: str) -> str:
        """PMID123.xml."""
        return f"PMID{uid}.xml"

    def split(self, body: bytes) -> Iterator[Item]:
        """Each citation of a ``<PubmedArticleSet>``."""
        root = parse_xml(body, "efetch db=pubmed")
        for record in root:
            if record.tag == "PubmedArticle":
                citation = record.find("MedlineCitation")
            elif record.tag == "PubmedBookArticle":
                citation = record.find("BookDocument")
            else:
                continue  # DeleteCitation and friends hold no document
            pmid = citation.findtext("PMID") if citation is not None else None
            if not pmid:
                continue
            data = etree.tostring(record, encoding="UTF-8", with_tail=False)
            yield Item(safe_id(pmid, "PMID"), _HEAD + data + _TAIL, _revised(citation))

    def vet(self, job: Job, item: Item) -> str | None:
        """PubMed citations need no check."""
        return None
