"""Client mistakes and hostile inputs against the real service (uvicorn on loopback): every one
is a clear 4xx JSON error, the OpenAPI document says what the routes do, and the operator
endpoints (readiness, metrics) tell anonymous callers nothing about the corpus."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.web.server import Live, live_service

QUESTION = "How are mRNA vaccines used against cancer in clinical trials?"
JSON_ROUTES = ["/v1/search", "/v1/answer", "/v1/chat/completions"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Live:
    """The session's real service (sample trials + a PubMed record; API key required)."""
    return live_service(tmp_path_factory, request)


@pytest.fixture(scope="module")
def http(live: Live) -> httpx.Client:
    """An HTTP client that sends the API key."""
    return httpx.Client(
        base_url=live.base_url, headers={"Authorization": f"Bearer {live.api_key}"}, timeout=300
    )


def _body(route: str, text: str = "mRNA") -> dict[str, Any]:
    if route.endswith("completions"):
        return {"model": "litrag", "messages": [{"role": "user", "content": text}]}
    return {"query": text} if route.endswith("search") else {"question": text}


def _error_type(r: httpx.Response) -> str:
    """The error type of a REST or an OpenAI-shaped error body."""
    err = r.json()["error"]
    return str(err.get("code") or err["type"])


@pytest.mark.parametrize("route", JSON_ROUTES)
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_body_that_is_not_sent_as_json_is_415(
    http: httpx.Client, route: str, content_type: str
) -> None:
    # what `curl -d '{...}'` sends: the JSON text under a form content type
    r = http.post(
        route, content=json.dumps(_body(route)).encode(), headers={"Content-Type": content_type}
    )
    assert r.status_code == 415, r.text
    assert _error_type(r) == "unsupported_media_type"
    assert "application/json" in r.json()["error"]["message"]


@pytest.mark.parametrize("route", JSON_ROUTES)
def test_a_body_without_content_type_is_415(http: httpx.Client, route: str) -> None:
    r = http.post(route, content=json.dumps(_body(route)).encode())
    assert r.status_code == 415, r.text
    assert "without a Content-Type" in r.json()["error"]["message"]


@pytest.mark.parametrize("route", JSON_ROUTES)
def test_a_lone_surrogate_is_a_400_not_a_500(http: httpx.Client, route: str) -> None:
    raw = json.dumps(_body(route, "mRNA \ud800 vaccine"))  # json.dumps escapes it as \ud800
    assert "\\ud800" in raw
    r = http.post(route, content=raw.encode(), headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert _error_type(r) == "invalid_body"
    assert "surrogate" in r.json()["error"]["message"]


def test_a_lone_surrogate_in_a_streamed_answer_is_a_400(http: httpx.Client) -> None:
    raw = json.dumps({"question": "mRNA \udfff", "stream": True})
    r = http.post("/v1/answer", content=raw.encode(), headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("route", JSON_ROUTES)
def test_json_nested_2000_deep_is_a_400(http: httpx.Client, route: str) -> None:
    deep = "[" * 2000 + "]" * 2000
    body = json.dumps(_body(route)).replace('"mRNA"', deep)
    r = http.post(route, content=body.encode(), headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert "nested deeper" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("/v1/search", {"query": "mRNA", "top_k": True}, "top_k"),
        ("/v1/search", {"query": "mRNA", "top_k": "5"}, "top_k"),
        ("/v1/answer", {"question": "mRNA", "stream": 0}, "stream"),
        ("/v1/answer", {"question": "mRNA", "top_k": 2.5}, "top_k"),
        ("/v1/search", {"query": "mRNA", "filters": {"has_results": 0}}, "has_results"),
        ("/v1/search", {"query": "mRNA", "filters": {"year_from": "2020"}}, "year_from"),
    ],
)
def test_request_types_are_strict(
    http: httpx.Client, route: str, body: dict[str, Any], field: str
) -> None:
    r = http.post(route, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["type"] == "invalid_request"
    assert field in r.json()["error"]["message"]
    json.dumps(r.json())  # the details are plain JSON (no bytes, no echoed input)


def test_chat_types_are_strict(http: httpx.Client) -> None:
    body = {**_body("/v1/chat/completions"), "stream": 0}
    r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == 400 and r.json()["error"]["param"] == "stream", r.text


@pytest.mark.parametrize(("route", "field"), [("/v1/search", "query"), ("/v1/answer", "question")])
def test_a_blank_query_is_a_422(http: httpx.Client, route: str, field: str) -> None:
    r = http.post(route, json={field: " \t\n "})
    assert r.status_code == 422, r.text
    assert field in r.json()["error"]["message"]


def test_streaming_with_an_llm_that_is_not_configured_fails_before_the_stream(
    http: httpx.Client,
) -> None:
    body = {"question": QUESTION, "generator": "llm", "stream": True}
    r = http.post("/v1/answer", json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["type"] == "llm_not_configured"


def test_readiness_shows_the_corpus_only_to_key_holders(live: Live, http: httpx.Client) -> None:
    anonymous = httpx.get(f"{live.base_url}/readyz")
    assert anonymous.status_code == 200 and anonymous.json()["ready"] is True
    assert "collection" not in anonymous.json() and "points" not in anonymous.json()
    keyed = http.get("/readyz").json()
    assert keyed["collection"] and int(keyed["points"]) > 0


def test_metrics_count_requests_and_verdicts_behind_the_key(live: Live, http: httpx.Client) -> None:
    assert httpx.get(f"{live.base_url}/metrics").status_code == 401
    assert http.post("/v1/search", json={"query": "mRNA vaccine", "top_k": 1}).status_code == 200
    r = http.post("/v1/answer", json={"question": QUESTION, "generator": "extractive"})
    assert r.status_code == 200, r.text
    supported = r.json()["verification"]["supported"]
    m = http.get("/metrics")
    assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")
    text = m.text
    lines = {ln.split(" ")[0]: float(ln.split(" ")[1]) for ln in text.splitlines() if ln[:1] != "#"}
    search_ok = 'litrag_http_requests_total{method="POST",route="/v1/search",status="200"}'
    assert lines[search_ok] >= 1
    assert lines['litrag_answer_sentences_total{mode="answer",verdict="supported"}'] >= supported
    assert lines["litrag_store_points"] > 0
    # a route template, never a raw path with an id in it
    http.get("/v1/documents/nct:NCT00000000")
    text = http.get("/metrics").text
    assert 'route="/v1/documents/{doc_id:path}",status="404"' in text
    assert "NCT00000000" not in text


def test_openapi_documents_what_the_routes_do(live: Live, http: httpx.Client) -> None:
    doc = httpx.get(f"{live.base_url}/openapi.json").json()
    paths, schemas = doc["paths"], doc["components"]["schemas"]
    chat = paths["/v1/chat/completions"]["post"]
    ref = chat["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert (
        ref == "#/components/schemas/ChatRequest"
        and "messages" in schemas["ChatRequest"]["properties"]
    )
    for path, method, statuses in [
        ("/v1/search", "post", {"400", "401", "415", "422", "503"}),
        ("/v1/answer", "post", {"400", "401", "415", "422", "502", "503", "504"}),
        ("/v1/chat/completions", "post", {"400", "401", "404", "415", "502", "503"}),
        ("/v1/documents/{doc_id}", "get", {"401", "404", "503"}),
        ("/v1/models", "get", {"401"}),
        ("/metrics", "get", {"401"}),
    ]:
        assert statuses <= set(paths[path][method]["responses"]), (path, statuses)
    assert "text/event-stream" in paths["/v1/answer"]["post"]["responses"]["200"]["content"]
    # this service has no LLM: the document says so
    assert "llm" not in schemas["AnswerRequest"]["properties"]["generator"]["enum"]
    top_k = schemas["SearchRequest"]["properties"]["top_k"]
    assert top_k["maximum"] == live.settings.service.max_top_k
    assert schemas["SearchRequest"]["properties"]["query"]["maxLength"] == (
        live.settings.service.max_question_chars
    )


def test_docs_page_loads_its_assets_from_the_service(live: Live) -> None:
    page = httpx.get(f"{live.base_url}/docs")
    assert page.status_code == 200
    srcs = [
        part.split('"')[1]
        for part in page.text.split("src=")[1:] + page.text.split("href=")[1:]
        if part.startswith('"')
    ]
    assert srcs and all(s.startswith("/") for s in srcs), srcs  # nothing from another host
    js = httpx.get(f"{live.base_url}/docs-assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and "SwaggerUIBundle" in js.text[:2000]
    assert httpx.get(f"{live.base_url}/docs-assets/swagger-ui.css").status_code == 200
