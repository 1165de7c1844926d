"""The official ``openai`` client against the real service on loopback: cited answers streaming and
not, the structured citations in the extra ``litrag`` field, models, and OpenAI-shaped errors."""

from __future__ import annotations

import re
from typing import Any

import httpx
import openai
import pytest

from core.config import LLMSettings
from tests.web.server import Live, serve, settings_for

QUESTION = "How are mRNA vaccines used against cancer in clinical trials?"
MARKER = re.compile(r"\[(\d+)\]")


@pytest.fixture(scope="module")
def client(live: Live) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{live.base_url}/v1", api_key=live.api_key, max_retries=0, timeout=300
    )


@pytest.fixture(scope="module")
def completion(client: openai.OpenAI) -> Any:
    return client.chat.completions.create(
        model="litrag",
        messages=[
            {"role": "system", "content": "You are a careful assistant."},
            {"role": "user", "content": "Tell me about influenza."},
            {"role": "assistant", "content": "..."},
            {"role": "user", "content": QUESTION},  # the last user message is the question
        ],
        temperature=0.2,
    )


def _extra(obj: Any) -> dict[str, Any]:
    extra = obj.model_extra or {}
    assert "litrag" in extra, f"no 'litrag' field in {obj!r}"
    value: dict[str, Any] = extra["litrag"]
    return value


def test_non_streaming_answer_has_verified_citations(completion: Any, live: Live) -> None:
    assert completion.object == "chat.completion"
    assert completion.model == "litrag"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    content = choice.message.content
    assert content and "[1]" in content
    extra = _extra(completion)
    citations, sources = extra["citations"], extra["sources"]
    used = {int(n) for n in MARKER.findall(content)}
    # every [n] in the text is citations[n-1]; every citation is used
    assert used == set(range(1, len(citations) + 1))
    for c in citations:
        assert c["quote"]["text"].strip()
        assert c["url"] and c["url"].startswith("https://")
        assert 1 <= c["source"] <= len(sources)
    v = extra["verification"]
    assert v["sentences"] and v["method"].startswith("minilm-nli-crossencoder/")
    # the three-way verdicts, their counts and the deciding quotes come through
    verdicts = [s["verdict"] for s in v["sentences"]]
    assert [v["supported"], v["contradicted"], v["not_supported"]] == [
        verdicts.count(k) for k in ("supported", "contradicted", "not_supported")
    ]
    assert v["repaired"] == 0  # extractive: sentences are quoted from their own chunk
    for s in v["sentences"]:
        assert s["supported"] == (s["verdict"] == "supported") and s["repaired_from"] is None
        q = s["quote"]
        if s["kept"] and q is not None:
            cite = citations[q["citation"] - 1]
            assert cite["chunk_id"] == q["chunk_id"] and q["citation"] in s["citations"]
    flagged = [s for s in v["sentences"] if s["kept"] and not s["supported"]]
    assert content.count("(⚠ ") == len(flagged)
    # the same answer as the service's own API for the same question
    direct = httpx.post(
        f"{live.base_url}/v1/answer",
        json={"question": QUESTION},
        headers={"Authorization": f"Bearer {live.api_key}"},
        timeout=300,
    )
    assert direct.status_code == 200
    assert direct.json()["answer"] == content
    assert [c["chunk_id"] for c in direct.json()["citations"]] == [c["chunk_id"] for c in citations]


def test_streaming_assembles_the_same_answer(client: openai.OpenAI, completion: Any) -> None:
    stream = client.chat.completions.create(
        model="litrag", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    pieces: list[str] = []
    chunks = list(stream)
    assert len(chunks) > 3
    assert chunks[0].choices[0].delta.role == "assistant"
    for chunk in chunks:
        assert chunk.object == "chat.completion.chunk"
        assert chunk.id == chunks[0].id
        pieces.append(chunk.choices[0].delta.content or "")
    assert sum(1 for p in pieces if p) > 3, "the text arrives in several pieces"
    assert "".join(pieces) == completion.choices[0].message.content
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    extra = _extra(last)
    expected = _extra(completion)
    assert extra["citations"] == expected["citations"]
    assert extra["sources"] == expected["sources"]


def test_report_model(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model="litrag-report",
        messages=[{"role": "user", "content": "mRNA cancer vaccine trials: status and phases"}],
    )
    content = resp.choices[0].message.content or ""
    assert content.startswith("## ")
    assert "| NCT id |" in content and "## Sources" in content
    extra = _extra(resp)
    assert extra["mode"] == "report"
    assert extra["trials"] and all(re.fullmatch(r"NCT\d{8}", t["nct_id"]) for t in extra["trials"])
    assert extra["sections"]


def test_models(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"litrag", "litrag-report"} <= ids
    assert client.models.retrieve("litrag").owned_by == "litrag"
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve("gpt-4o")
    assert err.value.code == "model_not_found"


@pytest.mark.parametrize("stream", [False, True])
def test_unknown_model(client: openai.OpenAI, stream: bool) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": QUESTION}], stream=stream
        )
    assert err.value.status_code == 404
    assert err.value.code == "model_not_found"
    assert err.value.param == "model"
    assert err.value.type == "invalid_request_error"


def test_unknown_model_error_body(live: Live) -> None:
    r = httpx.post(
        f"{live.base_url}/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {live.api_key}"},
    )
    assert r.status_code == 404
    body = r.json()
    assert set(body) == {"error"}
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == "model"
    assert body["error"]["code"] == "model_not_found"
    assert "gpt-4o" in body["error"]["message"]


def test_wrong_key(live: Live) -> None:
    bad = openai.OpenAI(base_url=f"{live.base_url}/v1", api_key="wrong-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        bad.chat.completions.create(
            model="litrag", messages=[{"role": "user", "content": QUESTION}]
        )
    assert err.value.status_code == 401
    assert err.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError) as err:
        bad.models.list()
    assert err.value.code == "invalid_api_key"


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/models"])
def test_missing_key_error_body(live: Live, path: str) -> None:
    body = {"model": "litrag", "messages": [{"role": "user", "content": QUESTION}]}
    r = (
        httpx.post(f"{live.base_url}{path}", json=body)
        if path.endswith("completions")
        else httpx.get(f"{live.base_url}{path}")
    )
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json() == {
        "error": {
            "message": r.json()["error"]["message"],
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    assert "API key" in r.json()["error"]["message"]


def test_no_user_message(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model="litrag", messages=[{"role": "system", "content": "Be brief."}]
        )
    assert err.value.status_code == 400
    assert err.value.param == "messages"


def test_invalid_body(live: Live) -> None:
    r = httpx.post(
        f"{live.base_url}/v1/chat/completions",
        content=b"{not json",
        headers={"Authorization": f"Bearer {live.api_key}", "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.post(
        f"{live.base_url}/v1/chat/completions",
        json={"model": "litrag", "messages": "not a list"},
        headers={"Authorization": f"Bearer {live.api_key}"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "messages"


@pytest.fixture(scope="module")
def llm_down(live: Live, request: pytest.FixtureRequest) -> str:
    """A second service on the copy of the store whose LLM endpoint refuses connections."""
    llm = LLMSettings(base_url="http://127.0.0.1:9/v1", max_retries=0, timeout_s=5)
    return serve(settings_for(live.spare_store, llm), request)


@pytest.fixture(scope="module")
def no_store(live: Live, request: pytest.FixtureRequest, tmp_path_factory: Any) -> str:
    """A service whose store does not exist (readyz 503)."""
    return serve(settings_for(tmp_path_factory.mktemp("empty") / "missing"), request, ready=False)


def test_store_unavailable(live: Live, no_store: str) -> None:
    client = openai.OpenAI(base_url=f"{no_store}/v1", api_key=live.api_key, max_retries=0)
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(
            model="litrag", messages=[{"role": "user", "content": QUESTION}]
        )
    assert err.value.status_code == 503
    assert err.value.code == "store_unavailable"
    assert err.value.type == "api_error"


@pytest.mark.parametrize("stream", [False, True])
def test_llm_unreachable(live: Live, llm_down: str, stream: bool) -> None:
    client = openai.OpenAI(base_url=f"{llm_down}/v1", api_key=live.api_key, max_retries=0)
    if not stream:
        with pytest.raises(openai.InternalServerError) as err:
            client.chat.completions.create(
                model="litrag", messages=[{"role": "user", "content": QUESTION}]
            )
        assert err.value.status_code == 502
        assert err.value.code == "llm_unavailable"
        return
    # retrieval succeeded, so the stream has started: the error arrives as an event in it
    chunks = client.chat.completions.create(
        model="litrag", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    with pytest.raises(openai.APIError) as api_err:
        for _ in chunks:
            pass
    assert "unreachable" in api_err.value.message
    assert api_err.value.code == "llm_unavailable"
