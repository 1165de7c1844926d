"""Document ids, chunk ids and URLs are deterministic and built only from identifiers."""

from __future__ import annotations

from core.ids import (
    chunk_id,
    doc_id_for,
    find_ncts,
    normalize_doi,
    normalize_nct,
    normalize_pmcid,
    source_url,
)
from core.schemas import Identifiers


def test_chunk_ids_are_stable_uuid5() -> None:
    # Fixed expectation: changing the namespace or the scheme would orphan every stored point.
    assert chunk_id("pmc:PMC1", 0) == "af295097-9c24-555f-b8ce-2c1ae54e0b3f"
    assert chunk_id("pmc:PMC1", 1) != chunk_id("pmc:PMC1", 0)


def test_doc_id_precedence_and_hash() -> None:
    assert doc_id_for(Identifiers(nct_id="NCT04267848", pmid="1")) == "nct:NCT04267848"
    assert doc_id_for(Identifiers(pmcid="PMC5", pmid="7", doi="10.1/x")) == "pmc:PMC5"
    assert doc_id_for(Identifiers(pmcid="PMC5", pmid="7"), prefer="pmid") == "pmid:7"
    assert doc_id_for(Identifiers(doi="10.1/x")) == "doi:10.1/x"
    h = doc_id_for(Identifiers(), b"abc")
    assert h.startswith("sha256:") and h == doc_id_for(Identifiers(), "abc")


def test_normalizers() -> None:
    assert (
        normalize_doi("https://doi.org/10.1038/S41467-023-39119-8.") == "10.1038/s41467-023-39119-8"
    )
    assert normalize_doi("10.1038%2Fs12276-023-01094-x") == "10.1038/s12276-023-01094-x"
    assert normalize_doi("not a doi") is None
    assert normalize_pmcid("123") == "PMC123" and normalize_pmcid("pmc9") == "PMC9"
    assert normalize_nct("nct04267848") == "NCT04267848" and normalize_nct("NCT1") is None


def test_urls_from_identifiers_only() -> None:
    assert (
        source_url(Identifiers(nct_id="NCT04267848"))
        == "https://clinicaltrials.gov/study/NCT04267848"
    )
    assert source_url(Identifiers(pmcid="PMC3")) == "https://pmc.ncbi.nlm.nih.gov/articles/PMC3/"
    assert source_url(Identifiers(pmid="29768149")) == "https://pubmed.ncbi.nlm.nih.gov/29768149/"
    assert source_url(Identifiers(doi="10.1/a b")) == "https://doi.org/10.1/a%20b"
    assert source_url(Identifiers()) is None


def test_an_identifier_read_from_a_document_cannot_break_out_of_a_markdown_link() -> None:
    """A DOI is taken from document text; parentheses (legal in DOIs) and brackets would end a
    Markdown link target early, and whatever followed would render as a link of its own."""
    hostile = normalize_doi("doi:10.3390/x)https://evil.example/login(y")
    assert hostile is not None
    url = source_url(Identifiers(doi=hostile))
    assert url is not None and not set("()[]<> ") & set(url)
    assert f"[doi]({url})".count(")") == 1  # the link ends where it should
    # a real DOI with parentheses still resolves (doi.org decodes %28/%29)
    assert (
        source_url(Identifiers(doi="10.1016/s0140-6736(20)30183-5"))
        == "https://doi.org/10.1016/s0140-6736%2820%2930183-5"
    )
    # ids that a parser let through malformed are encoded too, never interpolated raw
    assert (
        source_url(Identifiers(pmid="1)[x](y"))
        == "https://pubmed.ncbi.nlm.nih.gov/1%29%5Bx%5D%28y/"
    )


def test_nct_numbers_and_pmcids_are_ascii_digits_only() -> None:
    fullwidth = "".join(chr(0xFF10 + int(c)) for c in "01234567")  # fullwidth digits, not ASCII
    assert find_ncts(f"NCT{fullwidth} and NCT01234567") == ["NCT01234567"]
    assert find_ncts("NCT\u00a001234567, NCT-07654321") == ["NCT01234567", "NCT07654321"]
    assert normalize_nct(f"NCT{fullwidth}") is None
    assert normalize_pmcid(fullwidth[1:4]) is None
