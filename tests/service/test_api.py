"""The HTTP API end to end (TestClient runs the lifespan) on a real Edge store built from real
sample files: health, search modes and filters, extractive answers and reports, streaming,
documents and chunks, auth, limits, store failures and the OpenAPI document."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.models import EXAMPLE_QUESTION
from tests.service.conftest import MARKER, TRIALS_FILE, MakeClient, assert_tied, parse_sse

PGEN = "doi:10.1371/journal.pgen.1000052"  # a JATS article: its id holds ':' and '/'
PUBMED = "pmid:29768149"


def _studies() -> list[dict[str, Any]]:
    return list(json.loads(TRIALS_FILE.read_text())["studies"])


def _trial(title_words: tuple[str, ...]) -> str:
    """NCT id of the (first) trial in the sample file whose brief title has all the words."""
    for s in _studies():
        ident = s["protocolSection"]["identificationModule"]
        if all(w.lower() in ident["briefTitle"].lower() for w in title_words):
            return str(ident["nctId"])
    raise AssertionError(f"no trial titled with {title_words}")


PA_TRIAL = _trial(("mRNA-3927", "Propionic Acidemia"))  # NCT04159103
PA_QUERY = "mRNA-3927 for propionic acidemia"


def _search(client: TestClient, query: str, **body: Any) -> list[dict[str, Any]]:
    r = client.post("/v1/search", json={"query": query, **body})
    assert r.status_code == 200, r.text
    passages: list[dict[str, Any]] = r.json()["passages"]
    return passages


def _answer(client: TestClient, question: str, **body: Any) -> dict[str, Any]:
    r = client.post("/v1/answer", json={"question": question, **body})
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


# -- health -------------------------------------------------------------------------------------
def test_health_and_readiness(make_client: MakeClient) -> None:
    with make_client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        r = client.get("/readyz")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["ready"] is True and body["store"] == "ok" and body["model"] == "ok"
        assert int(body["points"]) > 0
        assert body["llm"].startswith("none")


# -- search -------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_search_modes_find_the_trial(make_client: MakeClient, mode: str) -> None:
    with make_client() as client:
        r = client.post("/v1/search", json={"query": PA_QUERY, "mode": mode, "top_k": 5})
        assert r.status_code == 200, r.text
        body = r.json()
    assert body["mode"] == mode and set(body["timings"]) == {"embed_ms", "search_ms"}
    top = body["passages"][0]
    assert top["doc_id"] == f"nct:{PA_TRIAL}", [p["doc_id"] for p in body["passages"]]
    assert top["url"] == f"https://clinicaltrials.gov/study/{PA_TRIAL}"
    assert top["trial"]["nct_id"] == PA_TRIAL and top["source_type"] == "trial"
    assert [p["rank"] for p in body["passages"]] == list(range(1, len(body["passages"]) + 1))
    scores = [p["score"] for p in body["passages"]]
    assert scores == sorted(scores, reverse=True)


def test_search_filters_hold_on_every_passage(make_client: MakeClient) -> None:
    studies = _studies()
    phase3 = {
        f"nct:{s['protocolSection']['identificationModule']['nctId']}"
        for s in studies
        if "PHASE3" in s["protocolSection"].get("designModule", {}).get("phases", [])
    }
    assert phase3
    q = "mRNA vaccine"
    with make_client() as client:
        got = _search(client, q, top_k=20, filters={"source_types": ["trial"]})
        assert got and all(p["source_type"] == "trial" and p["trial"] for p in got)

        got = _search(client, q, top_k=20, filters={"source_types": ["abstract", "article"]})
        assert got and {p["source_type"] for p in got} <= {"abstract", "article"}

        got = _search(client, q, top_k=20, filters={"phases": ["PHASE3"]})
        assert got and all("PHASE3" in p["trial"]["phases"] for p in got)
        assert {p["doc_id"] for p in got} <= phase3

        got = _search(client, q, top_k=20, filters={"statuses": ["not_yet_recruiting"]})
        assert got and all(p["trial"]["overall_status"] == "NOT_YET_RECRUITING" for p in got)

        # no study of the sample file has posted results
        assert not any(s.get("hasResults") for s in studies)
        got = _search(client, q, top_k=20, filters={"has_results": False})
        assert got and all(p["trial"] and p["trial"]["has_results"] is False for p in got)
        assert _search(client, q, top_k=20, filters={"has_results": True}) == []

        got = _search(client, q, top_k=30, filters={"year_from": 2023, "year_to": 2024})
        assert got and all(2023 <= p["year"] <= 2024 for p in got)
        got = _search(client, "gene expression", top_k=20, filters={"year_to": 2010})
        assert got and all(p["year"] <= 2010 for p in got)
        assert PGEN in {p["doc_id"] for p in got}  # the 2008 article

        wanted = {PGEN, PUBMED}
        got = _search(client, q, top_k=20, per_doc_cap=None, filters={"doc_ids": sorted(wanted)})
        assert {p["doc_id"] for p in got} == wanted

        # filters combine (all must hold)
        got = _search(
            client, q, top_k=20, filters={"phases": ["PHASE1"], "statuses": ["RECRUITING"]}
        )
        assert got and all(
            "PHASE1" in p["trial"]["phases"] and p["trial"]["overall_status"] == "RECRUITING"
            for p in got
        )


def test_search_per_doc_cap(make_client: MakeClient) -> None:
    with make_client() as client:
        capped3 = _search(client, PA_QUERY, top_k=10)  # default cap: 3
        capped1 = _search(client, PA_QUERY, top_k=10, per_doc_cap=1)
    docs3 = [p["doc_id"] for p in capped3]
    assert max(docs3.count(d) for d in docs3) == 3  # the cap binds on this query
    docs1 = [p["doc_id"] for p in capped1]
    assert len(docs1) == 10 and len(set(docs1)) == len(docs1)
    assert docs1[0] == f"nct:{PA_TRIAL}"


# -- extractive answers -------------------------------------------------------------------------
def test_extractive_answer_is_tied_verified_and_deterministic(make_client: MakeClient) -> None:
    question = "What is mRNA-3927 being studied for in propionic acidemia?"
    with make_client() as client:
        first = _answer(client, question, top_k=5)
        second = _answer(client, question, top_k=5)
    assert first["generator"] == "extractive" and first["degraded"] is False
    assert first["mode"] == "answer" and first["question"] == question
    assert first["citations"] and first["verification"]["all_supported"] is True
    assert all(s["supported"] and s["kept"] for s in first["verification"]["sentences"])
    assert first["verification"]["removed_citations"] == []
    assert first["verification"]["removed_urls"] == []
    assert_tied(first)
    assert f"nct:{PA_TRIAL}" in {c["doc_id"] for c in first["citations"]}
    assert second["answer"] == first["answer"]
    assert second["citations"] == first["citations"]


def test_extractive_answer_from_an_article_keeps_numbering_tied(make_client: MakeClient) -> None:
    """Article text carries its own reference markers ("[23]"); copied into an answer they
    would read as citations of this answer. Every [n] must still be citations[n-1]."""
    question = "What did previous studies report about gene expression heritability?"
    with make_client() as client:
        resp = _answer(client, question, top_k=5, filters={"doc_ids": [PGEN]})
    assert {p["doc_id"] for p in resp["passages"]} == {PGEN}
    assert resp["citations"], resp["answer"]
    cited = {c["chunk_id"] for c in resp["citations"]}
    assert any(MARKER.search(p["text"]) for p in resp["passages"] if p["chunk_id"] in cited)
    assert_tied(resp)


def test_llm_generator_without_endpoint_is_refused(make_client: MakeClient) -> None:
    with make_client() as client:
        r = client.post("/v1/answer", json={"question": PA_QUERY, "generator": "llm"})
    assert r.status_code == 422
    assert r.json()["error"]["type"] == "llm_not_configured"


def test_streaming_extractive_answer(make_client: MakeClient) -> None:
    with make_client() as client:
        r = client.post("/v1/answer", json={"question": PA_QUERY, "top_k": 5, "stream": True})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(r.text)
    names = [n for n, _ in events]
    assert names[0] == "passages" and names[-1] == "final"
    assert set(names[1:-1]) == {"delta"} and len(names) > 2
    final = events[-1][1]
    assert final["generator"] == "extractive"
    assert [p["chunk_id"] for p in final["passages"]] == [
        p["chunk_id"] for p in events[0][1]["passages"]
    ]
    # the deltas are the extracted sentences; the final text adds the markers
    streamed = "".join(d["text"] for n, d in events if n == "delta")
    assert MARKER.sub("", final["answer"]).replace(" .", ".").split() == streamed.split()
    assert_tied(final)


# -- report -------------------------------------------------------------------------------------
def test_report_on_the_example_question(make_client: MakeClient) -> None:
    with make_client(answer={"top_k": 3}) as client:
        resp = _answer(client, EXAMPLE_QUESTION, mode="report")
        rows = resp["trials"]
        found = {t["nct_id"]: client.get(f"/v1/documents/nct:{t['nct_id']}") for t in rows}
    assert resp["mode"] == "report" and resp["generator"] == "extractive"
    titles = [s["title"] for s in resp["sections"]]
    assert titles == [
        "Overview",
        "Cancer treatment",
        "Rare diseases",
        "Personalized medicine",
        "Clinical trials",
        "Challenges",
    ]
    assert "COVID" not in resp["sections"][0]["query"]  # "beyond COVID-19" is not searched for
    # ... and no passage of a document titled with it is used, nor any such trial listed
    assert not [p["title"] for p in resp["passages"] if "covid-19" in p["title"].lower()]
    assert not [t["title"] for t in resp["trials"] if "covid-19" in t["title"].lower()]
    for s in resp["sections"]:
        assert f"## {s['title']}\n\n{s['text']}" in resp["answer"]
    assert (
        resp["answer"].count("## Clinical trials\n") == 1
    )  # the facet section; the table has its own
    assert "## Relevant clinical trial records\n" in resp["answer"]
    assert rows
    for t in rows:
        assert re.fullmatch(r"NCT\d{8}", t["nct_id"]) and t["doc_id"] == f"nct:{t['nct_id']}"
        assert t["url"] == f"https://clinicaltrials.gov/study/{t['nct_id']}"
        r = found[t["nct_id"]]
        assert r.status_code == 200, r.text
        assert r.json()["document"]["trial"]["nct_id"] == t["nct_id"]
        assert f"[{t['nct_id']}]({t['url']})" in resp["answer"]
    # ... and ends with the Sources: one [n] entry per citation, in order, with its URL
    body, sep, sources = resp["answer"].rpartition("## Sources\n\n")
    assert sep
    lines = sources.strip().split("\n")
    assert [int(MARKER.match(x).group(1)) for x in lines] == [c["n"] for c in resp["citations"]]  # type: ignore[union-attr]
    for line, c in zip(lines, resp["citations"], strict=True):
        assert c["url"] and line.endswith(c["url"])
    assert_tied(resp, body)
    assert resp["verification"]["all_supported"] is True


# -- documents and chunks -----------------------------------------------------------------------
def test_documents_and_chunks(make_client: MakeClient) -> None:
    with make_client() as client:
        r = client.get(f"/v1/documents/{PGEN}")
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["document"]["doc_id"] == PGEN
        assert doc["document"]["source_type"] == "article"
        assert doc["url"] == "https://doi.org/10.1371/journal.pgen.1000052"
        assert doc["urls"]["doi"] == doc["url"]
        chunks = doc["chunks"]
        assert [c["ordinal"] for c in chunks] == list(range(len(chunks))) and len(chunks) > 10
        assert all(c["doc_id"] == PGEN for c in chunks)

        r = client.get(f"/v1/chunks/{chunks[3]['chunk_id']}")
        assert r.status_code == 200, r.text
        one = r.json()
        assert one["chunk"] == chunks[3] and one["document"]["doc_id"] == PGEN
        assert one["url"] == doc["url"]

        r = client.get(f"/v1/documents/nct:{PA_TRIAL}")
        assert r.status_code == 200 and r.json()["document"]["trial"]["nct_id"] == PA_TRIAL

        r = client.get("/v1/documents/doi:10.9999/not-stored")
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"
        assert "doi:10.9999/not-stored" in r.json()["error"]["message"]
        r = client.get(f"/v1/chunks/{uuid.uuid4()}")
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"
        r = client.get("/v1/chunks/not-a-uuid")
        assert r.status_code == 422 and r.json()["error"]["type"] == "invalid_request"


# -- auth -----------------------------------------------------------------------------------------
def test_api_key(make_client: MakeClient) -> None:
    body = {"query": PA_QUERY, "top_k": 1}
    with make_client(service={"api_key": "s3cret-key"}) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"}):
            r = client.post("/v1/search", json=body, headers=headers)
            assert r.status_code == 401, (headers, r.text)
            assert r.headers["www-authenticate"] == "Bearer"
            assert r.json()["error"]["type"] == "invalid_api_key"
        r = client.get(f"/v1/documents/nct:{PA_TRIAL}")
        assert r.status_code == 401
        r = client.post("/v1/search", json=body, headers={"Authorization": "Bearer s3cret-key"})
        assert r.status_code == 200, r.text
        r = client.post("/v1/search", json=body, headers={"X-API-Key": "s3cret-key"})
        assert r.status_code == 200, r.text
        # health endpoints stay open
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200


# -- limits ---------------------------------------------------------------------------------------
def test_limits(make_client: MakeClient) -> None:
    with make_client(
        service={"max_question_chars": 100, "max_top_k": 20, "max_body_bytes": 2048}
    ) as client:
        r = client.post("/v1/answer", json={"question": "x" * 101})
        assert r.status_code == 422
        err = r.json()["error"]
        assert err["type"] == "invalid_request"
        assert err["message"] == "question: is 101 characters; the limit is 100"

        r = client.post("/v1/search", json={"query": "y" * 101})
        assert r.status_code == 422 and "the limit is 100" in r.json()["error"]["message"]

        r = client.post("/v1/search", json={"query": PA_QUERY, "top_k": 21})
        assert r.status_code == 422
        assert r.json()["error"]["message"] == "top_k: is 21; the limit is 20"
        r = client.post("/v1/answer", json={"question": PA_QUERY, "top_k": 21})
        assert r.status_code == 422 and "top_k" in r.json()["error"]["message"]

        big = json.dumps({"query": "z" * 3000}).encode()
        r = client.post("/v1/search", content=big, headers={"Content-Type": "application/json"})
        assert r.status_code == 422
        assert r.json()["error"] == {
            "type": "request_too_large",
            "message": "request body exceeds the limit of 2048 bytes",
        }
        # the same body without a Content-Length (chunked): counted while it is read

        def pieces() -> Any:
            for i in range(0, len(big), 512):
                yield big[i : i + 512]

        r = client.post(
            "/v1/search", content=pieces(), headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 422, r.text
        assert "request body exceeds" in r.json()["error"]["message"]

        # malformed JSON is 400, unknown fields 422, in the same error shape
        r = client.post(
            "/v1/search", content=b"{oops", headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_body"
        r = client.post("/v1/search", json={"query": "q", "topk": 3})
        assert r.status_code == 422 and "topk" in r.json()["error"]["message"]


# -- store failures -------------------------------------------------------------------------------
def test_missing_store_is_503(make_client: MakeClient, tmp_path: Path) -> None:
    empty = tmp_path / "empty-store"
    empty.mkdir()
    with make_client(store={"path": empty}) as client:
        assert client.get("/healthz").status_code == 200
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["ready"] is False and "no collection" in r.json()["store"]
        r = client.post("/v1/search", json={"query": PA_QUERY})
        assert r.status_code == 503
        assert r.json()["error"]["type"] == "store_unavailable"
        assert "litrag ingest" in r.json()["error"]["message"]
        r = client.post("/v1/answer", json={"question": PA_QUERY})
        assert r.status_code == 503 and r.json()["error"]["type"] == "store_unavailable"
    assert list(empty.iterdir()) == []  # nothing was created


def test_store_closed_under_a_running_service_is_503(make_client: MakeClient) -> None:
    with make_client() as client:
        assert client.post("/v1/search", json={"query": PA_QUERY}).status_code == 200
        client.app.state.litrag.store.close()  # type: ignore[attr-defined]
        r = client.post("/v1/search", json={"query": PA_QUERY})
        assert r.status_code == 503, r.text
        assert r.json()["error"]["type"] == "store_unavailable"
        assert "closed" in r.json()["error"]["message"]
        r = client.post("/v1/answer", json={"question": PA_QUERY})
        assert r.status_code == 503 and r.json()["error"]["type"] == "store_unavailable"
        assert client.get(f"/v1/documents/nct:{PA_TRIAL}").status_code == 503
        assert client.get("/readyz").status_code == 503
    # the lifespan's shutdown closed it again without error; the store opens again
    with make_client() as client:
        assert client.get("/readyz").status_code == 200


# -- OpenAPI --------------------------------------------------------------------------------------
def test_openapi_documents_answer_examples(make_client: MakeClient) -> None:
    with make_client() as client:
        spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/answer"]["post"]
    examples = op["requestBody"]["content"]["application/json"]["examples"]
    assert set(examples) == {"answer", "report", "stream"}
    assert examples["report"]["value"] == {"question": EXAMPLE_QUESTION, "mode": "report"}
    assert examples["stream"]["value"]["stream"] is True
    assert {"401", "422", "502", "503", "504"} <= set(op["responses"])
    assert "text/event-stream" in op["responses"]["200"]["content"]
    assert {"/v1/search", "/v1/report", "/healthz", "/readyz"} <= set(spec["paths"])
