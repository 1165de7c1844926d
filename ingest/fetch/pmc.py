"""PubMed Central: open-access full text as JATS, one ``PMC<id>.nxml`` file per article.

esearch ``db=pmc`` with ``(<query>) AND open access[filter]``, efetch ``db=pmc`` (a
``<pmc-articleset>`` of ``<article>``s). An article without PMC's ``<?properties open_access?>``
mark is checked with the PMC OA web service; ``idIsNotOpenAccess`` (or any other error it gives)
is recorded as skipped with its reason, and no file is written.
"""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

from ingest.fetch.base import Job, safe_id
from ingest.fetch.eutils import Item, parse_xml

NAME = "pmc"


def _is_open_access(article: etree._Element) -> bool:
    return any(
        isinstance(node, etree._ProcessingInstruction)
        and node.target == "properties"
        and "open_access" in (node.text or "")
        for node in article
    )


def _article_ids(article: etree._Element) -> dict[str, str]:
    ids: dict[str, str] = {}
    for e in article.iterfind("front/article-meta/article-id"):
        kind = e.get("pub-id-type")
        if kind and e.text:
            ids.setdefault(kind, e.text.strip())
    return ids


def article_uid(article: etree._Element) -> str | None:
    """The article's PMC uid (digits) from its ``article-id``s, old (pmc) or new (pmcid) style."""
    ids = _article_ids(article)
    value = ids.get("pmc") or ids.get("pmcid") or ids.get("pmcaid")
    if not value:
        return None
    return safe_id(value.removeprefix("PMC"), "PMC id")


class PmcSource:
    """The PMC open-access subset through E-utilities."""

    name = NAME
    db = "pmc"

    def term(self, query: str) -> str:
        """Restrict the query to the open-access subset."""
        return f"({query}) AND open access[filter]"

    def batch(self, job: Job) -> int:
        """Articles per efetch."""
        return job.settings.pmc_batch

    def doc_id(self, uid: str) -> str:
        """PMC123 for uid 123."""
        return f"PMC{uid}"

    def uid(self, doc_id: str) -> str:
        """123 for PMC123."""
        return doc_id.removeprefix("PMC")

    def file_name(self, uid: str) -> str:
        """PMC123.nxml."""
        return f"PMC{uid}.nxml"

    def split(self, body: bytes) -> Iterator[Item]:
        """Each ``<article>`` of a ``<pmc-articleset>`` as a standalone JATS document."""
        root = parse_xml(body, "efetch db=pmc")
        articles = [root] if root.tag == "article" else root.findall("article")
        for article in articles:
            uid = article_uid(article)
            if uid is None:
                continue  # reported as 'no record' for the id that was asked for
            data = etree.tostring(article, encoding="UTF-8", xml_declaration=True, with_tail=False)
            version = _article_ids(article).get("pmcid-ver")
            yield Item(uid, data + b"\n", version, vet=not _is_open_access(article))

    def vet(self, job: Job, item: Item) -> str | None:
        """Ask the PMC OA service whether an article without the open-access mark is open access."""
        pmcid = f"PMC{item.uid}"
        response = job.client.request(
            "GET", job.settings.pmc_oa_url, group="ncbi", params={"id": pmcid}
        )
        root = parse_xml(response.content, f"PMC OA service id={pmcid}")
        error = root.find("error")
        if error is not None:
            code = error.get("code") or "error"
            return f"PMC OA service: {code}: {' '.join((error.text or '').split())}"
        if root.find(f"records/record[@id='{pmcid}']") is not None:
            return None
        return f"PMC OA service: no open-access record for {pmcid}"
