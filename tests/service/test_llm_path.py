"""POST /v1/answer with an LLM: a scripted OpenAI-compatible server over real HTTP stands in for
the model, and every kind of bad model output must be caught by verification, never shown as a
tied citation."""

from __future__ import annotations

import re
from typing import Any

from core.ids import source_url
from core.schemas import Identifiers
from tests.service.conftest import (
    LLM_QUESTION,
    LLM_TOP_K,
    MakeClient,
    ask_llm_question,
    assert_tied,
    llm_settings,
    parse_sse,
)
from tests.service.stub_llm import INVENTED_NCT, INVENTED_URL, UNSUPPORTED_TEXT, StubLLM


def _assert_prompt(stub: StubLLM, passages: list[dict[str, Any]]) -> None:
    """The model saw the question and exactly the returned passages, numbered [1]..[k]."""
    (prompt,) = stub.prompts()
    assert f"Question: {LLM_QUESTION}\n" in prompt
    blocks = re.findall(r"(?:Passages:\n|\n\n)\[(\d+)\] ([^\n]*)\n", prompt)
    assert [int(n) for n, _ in blocks] == list(range(1, len(passages) + 1))
    for (_, heading), p in zip(blocks, passages, strict=True):
        assert heading == f"{p['title']} — {p['section']}" if p["section"] else p["title"]
        assert p["text"] in prompt
    request = stub.requests[-1]["body"]
    assert request["model"] == "stub-model" and request["messages"][0]["role"] == "system"


def test_cite_ok(make_client: MakeClient, stub_llm: StubLLM) -> None:
    with make_client(llm=llm_settings(stub_llm)) as client:
        assert client.get("/readyz").json()["llm"] == "configured"
        resp = ask_llm_question(client)
    assert resp["generator"] == "llm" and resp["degraded"] is False
    _assert_prompt(stub_llm, resp["passages"])
    assert resp["passages"][0]["doc_id"] == "nct:NCT04159103"
    assert len(resp["citations"]) == 1
    cite = resp["citations"][0]
    first = resp["passages"][0]
    assert cite["chunk_id"] == first["chunk_id"]
    assert cite["url"] == source_url(Identifiers(**first["identifiers"]))
    assert cite["quote"]["text"] and cite["quote"]["text"] in first["text"]
    v = resp["verification"]
    assert v["all_supported"] is True and [s["supported"] for s in v["sentences"]] == [True]
    (check,) = v["sentences"]
    assert check["verdict"] == "supported" and check["repaired_from"] is None
    assert (v["supported"], v["contradicted"], v["not_supported"], v["repaired"]) == (1, 0, 0, 0)
    # the supporting quote: a span of passage 1, at its offsets
    q = check["quote"]
    assert q["chunk_id"] == first["chunk_id"] and q["citation"] == 1
    assert first["text"][q["start"] : q["end"]] == q["text"] != ""
    assert v["removed_citations"] == [] and v["removed_urls"] == []
    sentence = stub_llm.replies[0].removesuffix(" [1]")
    assert resp["answer"] == f"{sentence[:-1]} [1]."
    assert_tied(resp)


def test_citation_of_a_passage_not_given_is_removed(
    make_client: MakeClient, stub_llm: StubLLM
) -> None:
    stub_llm.reset("cite-99")
    with make_client(llm=llm_settings(stub_llm)) as client:
        resp = ask_llm_question(client)
    assert "[99]" in stub_llm.replies[0] and "[99]" not in resp["answer"]
    (removed,) = resp["verification"]["removed_citations"]
    assert removed["marker"] == "[99]" and "99" in removed["reason"]
    assert removed["sentence"] == 1
    checks = resp["verification"]["sentences"]
    assert checks[0]["supported"] is True and checks[0]["citations"] == [1]
    assert checks[0]["repaired_from"] is None
    # the second sentence lost its only citation; it was taken from passage 2, so retrieved
    # passages support it: repair cites the one the verifier finds supporting, and says so
    second = checks[1]
    assert second["verdict"] == "supported" and second["citations"] == [2]
    assert second["repaired_from"] == []
    note = "it cited no retrieved passage; re-attributed to passage "
    assert second["repair"].startswith(note)
    rank = int(second["repair"].removeprefix(note))
    assert resp["citations"][1]["chunk_id"] == resp["passages"][rank - 1]["chunk_id"]
    assert second["quote"]["chunk_id"] == resp["passages"][rank - 1]["chunk_id"]
    assert resp["verification"]["repaired"] == 1
    assert "⚠" not in resp["answer"]
    assert_tied(resp)


def test_unsupported_claim_is_flagged_or_dropped(
    make_client: MakeClient, stub_llm: StubLLM
) -> None:
    stub_llm.reset("unsupported")
    with make_client(llm=llm_settings(stub_llm)) as client:
        flagged = ask_llm_question(client, unsupported="flag")
        dropped = ask_llm_question(client, unsupported="drop")
    assert "PD-L1" not in flagged["passages"][0]["text"]
    (check,) = flagged["verification"]["sentences"]
    assert check["text"] == UNSUPPORTED_TEXT.replace(" [1]", "")
    assert check["supported"] is False and check["kept"] is True
    assert check["verdict"] in ("contradicted", "not_supported")
    # no other retrieved passage supports it either: the citation stays, marked
    assert check["repaired_from"] is None and check["citations"] == [1]
    assert check["quote"]["citation"] == 1
    assert flagged["verification"]["all_supported"] is False
    assert flagged["verification"]["unsupported_policy"] == "flag"
    mark = f"(⚠ {check['verdict'].replace('_', ' ')} by [1])"
    assert flagged["answer"] == UNSUPPORTED_TEXT + " " + mark
    assert_tied(flagged)

    (check,) = dropped["verification"]["sentences"]
    assert check["supported"] is False and check["kept"] is False and check["citations"] == []
    assert check["quote"]["citation"] is None  # its passage is cited nowhere
    assert dropped["verification"]["unsupported_policy"] == "drop"
    assert "PD-L1" not in dropped["answer"] and "mRNA-4157" not in dropped["answer"]
    assert dropped["citations"] == [] and dropped["sources"] == []


def test_invented_url_is_removed(make_client: MakeClient, stub_llm: StubLLM) -> None:
    stub_llm.reset("invented-url")
    with make_client(llm=llm_settings(stub_llm)) as client:
        resp = ask_llm_question(client)
    assert INVENTED_URL in stub_llm.replies[0]
    assert INVENTED_URL not in resp["answer"] and "example.org" not in resp["answer"]
    assert resp["verification"]["removed_urls"] == [INVENTED_URL]
    assert resp["verification"]["sentences"][0]["supported"] is True
    assert resp["sources"]
    for s in resp["sources"]:  # source URLs come from stored identifiers only
        assert s["url"] == source_url(Identifiers(**s["identifiers"]))
        assert "example.org" not in str(s)
    assert_tied(resp)


def test_invented_trial_number_is_unsupported(make_client: MakeClient, stub_llm: StubLLM) -> None:
    stub_llm.reset("invented-nct")
    with make_client(llm=llm_settings(stub_llm)) as client:
        resp = ask_llm_question(client)
    (check,) = resp["verification"]["sentences"]
    assert INVENTED_NCT in check["text"]
    # not supported: by the model, or by the key-term check (the number is in no passage)
    assert check["supported"] is False and check["verdict"] == "not_supported"
    assert check["repaired_from"] is None  # no retrieved passage names that trial
    assert resp["verification"]["all_supported"] is False
    assert resp["answer"].endswith(f" (⚠ {check['verdict'].replace('_', ' ')} by [1])")
    assert_tied(resp)


def test_llm_timeout_is_504_or_degraded(make_client: MakeClient, stub_llm: StubLLM) -> None:
    stub_llm.reset("timeout")  # the stub never answers (closes after 3 s); the client waits 1 s
    with make_client(llm=llm_settings(stub_llm, timeout_s=1)) as client:
        r = client.post("/v1/answer", json={"question": LLM_QUESTION, "top_k": LLM_TOP_K})
    assert r.status_code == 504, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["type"] == "llm_timeout"
    assert "timed out" in body["error"]["message"]
    assert "Traceback" not in r.text

    with make_client(llm=llm_settings(stub_llm, timeout_s=1, fallback="extractive")) as client:
        resp = ask_llm_question(client)
    assert resp["degraded"] is True and resp["generator"] == "extractive"
    # the extractive answer, verified like any other (a quote is never contradicted by its own
    # passage; the model may still leave one below its support threshold) and never repaired
    v = resp["verification"]
    assert resp["citations"] and v["contradicted"] == 0 and v["supported"] >= 1
    assert v["repaired"] == 0
    assert_tied(resp)


def test_llm_http_500_is_502(make_client: MakeClient, stub_llm: StubLLM) -> None:
    stub_llm.reset("500")
    with make_client(llm=llm_settings(stub_llm)) as client:
        r = client.post("/v1/answer", json={"question": LLM_QUESTION, "top_k": LLM_TOP_K})
        assert r.status_code == 502, r.text
        assert r.json()["error"]["type"] == "llm_unavailable"
        assert "500" in r.json()["error"]["message"] and "Traceback" not in r.text
        # streaming: the failure arrives as an error event after the passages
        r = client.post(
            "/v1/answer", json={"question": LLM_QUESTION, "top_k": LLM_TOP_K, "stream": True}
        )
    assert r.status_code == 200
    events = parse_sse(r.text)
    assert [n for n, _ in events] == ["passages", "error"]
    assert events[1][1]["status"] == 502


def test_llm_unreachable_is_502(make_client: MakeClient) -> None:
    with make_client(llm={"base_url": "http://127.0.0.1:9/v1", "max_retries": 0}) as client:
        r = client.post("/v1/answer", json={"question": LLM_QUESTION, "top_k": LLM_TOP_K})
    assert r.status_code == 502 and r.json()["error"]["type"] == "llm_unavailable"
    assert "unreachable" in r.json()["error"]["message"]


def test_streaming_llm_answer_is_verified_in_final(
    make_client: MakeClient, stub_llm: StubLLM
) -> None:
    stub_llm.reset("cite-99")
    with make_client(llm=llm_settings(stub_llm)) as client:
        r = client.post(
            "/v1/answer", json={"question": LLM_QUESTION, "top_k": LLM_TOP_K, "stream": True}
        )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(r.text)
    names = [n for n, _ in events]
    assert names[0] == "passages" and names[-1] == "final"
    assert set(names[1:-1]) == {"delta"} and len(names) > 3
    assert stub_llm.requests[-1]["body"]["stream"] is True
    # deltas are the model's raw text; the final answer is the verified one
    streamed = "".join(d["text"] for n, d in events if n == "delta")
    assert streamed == stub_llm.replies[0] and "[99]" in streamed
    final = events[-1][1]
    assert final["generator"] == "llm" and "[99]" not in final["answer"]
    assert [c["marker"] for c in final["verification"]["removed_citations"]] == ["[99]"]
    assert final["passages"] == events[0][1]["passages"]
    _assert_prompt(stub_llm, final["passages"])
    assert final["verification"]["sentences"][0]["supported"] is True
    assert_tied(final)
