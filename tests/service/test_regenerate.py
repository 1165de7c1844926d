"""One regeneration of LLM sentences that fail verification (service/answer/regenerate.py), over
real HTTP: the scripted OpenAI-compatible stub answers the first request and the regeneration
differently, the service runs on the real sample store with the shipped verifier."""

from __future__ import annotations

from typing import Any

from service.answer.extractive import NO_EVIDENCE
from service.answer.prompts import REGENERATE
from tests.service.conftest import (
    LLM_QUESTION,
    LLM_TOP_K,
    MakeClient,
    ask_llm_question,
    assert_tied,
    llm_settings,
    parse_sse,
)
from tests.service.stub_llm import UNSUPPORTED_TEXT, StubLLM

FAILING = UNSUPPORTED_TEXT.replace(" [1]", "")
ASK_AGAIN = REGENERATE.split("\n", 1)[0]


def _users(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["body"]["messages"] if m["role"] == "user"]


def _regenerations(stub: StubLLM) -> list[dict[str, Any]]:
    return [r for r in stub.requests if len(_users(r)) > 1]


def test_failing_sentence_is_regenerated_once(make_client: MakeClient, stub_llm: StubLLM) -> None:
    stub_llm.reset("retry-fixes")
    with make_client(llm=llm_settings(stub_llm)) as client:
        resp = ask_llm_question(client)
    first, again = stub_llm.requests
    # the same conversation, then the model's reply, then the failing sentence with its reason
    msgs = again["body"]["messages"]
    assert msgs[:2] == first["body"]["messages"]
    assert msgs[2] == {"role": "assistant", "content": UNSUPPORTED_TEXT}
    ask = msgs[3]["content"]
    assert ask.startswith(ASK_AGAIN) and f'"{FAILING}" (cited: [1])' in ask
    a1, a2 = resp["verification"]["attempts"]
    (failing,) = a1["failing"]
    assert failing["text"] == FAILING and failing["passages"] == [1]
    assert failing["verdict"] in ("contradicted", "not_supported")
    assert failing["reason"] and failing["reason"] in ask
    assert (a1["attempt"], a1["llm_requests"], a1["sentences"], a1["supported"]) == (1, 1, 1, 0)
    assert a1["used"] is False and a1["answer"].startswith(FAILING[:-1]) and "⚠" in a1["answer"]
    assert (a2["attempt"], a2["llm_requests"], a2["sentences"], a2["supported"]) == (2, 1, 1, 1)
    assert a2["used"] is True and a2["failing"] == [] and a2["error"] is None
    # the response is attempt 2: the supported sentence of passage 1, cited
    supported = stub_llm.replies[1].removesuffix(" [1]")
    assert resp["answer"] == a2["answer"] == f"{supported[:-1]} [1]."
    (check,) = resp["verification"]["sentences"]
    assert check["verdict"] == "supported" and check["citations"] == [1]
    assert resp["verification"]["all_supported"] is True
    assert resp["citations"][0]["chunk_id"] == resp["passages"][0]["chunk_id"]
    assert_tied(resp)


def test_still_failing_is_flagged_or_dropped(make_client: MakeClient, stub_llm: StubLLM) -> None:
    stub_llm.reset("unsupported")  # the same unsupported sentence both times
    with make_client(llm=llm_settings(stub_llm)) as client:
        flagged = ask_llm_question(client, unsupported="flag")
        assert len(stub_llm.requests) == 2 and len(_regenerations(stub_llm)) == 1
        dropped = ask_llm_question(client, unsupported="drop")
    assert len(stub_llm.requests) == 4
    for resp in (flagged, dropped):
        a1, a2 = resp["verification"]["attempts"]
        assert [f["text"] for f in a1["failing"]] == [FAILING] == [f["text"] for f in a2["failing"]]
        assert (a1["used"], a2["used"], a2["supported"]) == (False, True, 0)
        (check,) = resp["verification"]["sentences"]
        assert check["supported"] is False and check["kept"] is (resp is flagged)
        assert_tied(resp)
    assert flagged["answer"].startswith(FAILING[:-1]) and "(⚠ " in flagged["answer"]
    assert "PD-L1" not in dropped["answer"] and dropped["citations"] == []


def test_no_regeneration_when_every_sentence_is_supported(
    make_client: MakeClient, stub_llm: StubLLM
) -> None:
    with make_client(llm=llm_settings(stub_llm)) as client:
        resp = ask_llm_question(client)
    assert len(stub_llm.requests) == 1
    (a1,) = resp["verification"]["attempts"]
    assert (a1["attempt"], a1["llm_requests"], a1["sentences"], a1["supported"]) == (1, 1, 1, 1)
    assert a1["failing"] == [] and a1["used"] is True and a1["answer"] == resp["answer"]


def test_regeneration_can_be_turned_off(make_client: MakeClient, stub_llm: StubLLM) -> None:
    stub_llm.reset("retry-fixes")
    with make_client(llm=llm_settings(stub_llm), answer={"regenerate": False}) as client:
        resp = ask_llm_question(client)
    assert len(stub_llm.requests) == 1
    (a1,) = resp["verification"]["attempts"]
    assert a1["used"] is True and [f["text"] for f in a1["failing"]] == [FAILING]
    assert resp["answer"] == a1["answer"] and resp["answer"].startswith(FAILING[:-1])


def test_extractive_answers_record_no_attempt(make_client: MakeClient, stub_llm: StubLLM) -> None:
    with make_client(llm=llm_settings(stub_llm)) as client:
        resp = ask_llm_question(client, generator="extractive")
    assert stub_llm.requests == [] and resp["verification"]["attempts"] == []


def test_regeneration_never_cites_a_passage_not_retrieved(
    make_client: MakeClient, stub_llm: StubLLM
) -> None:
    stub_llm.reset("retry-cite-99")  # the rewrite quotes passage 2 but cites [99]
    with make_client(llm=llm_settings(stub_llm)) as client:
        resp = ask_llm_question(client)
    assert "[99]" in stub_llm.replies[1] and "[99]" not in resp["answer"]
    (removed,) = resp["verification"]["removed_citations"]
    assert removed["marker"] == "[99]" and removed["sentence"] == 0
    retrieved = {p["chunk_id"] for p in resp["passages"]}
    assert resp["citations"] and all(c["chunk_id"] in retrieved for c in resp["citations"])
    # the rewritten sentence lost its only marker; repair may cite a retrieved passage
    (check,) = resp["verification"]["sentences"]
    if check["citations"]:
        assert check["repaired_from"] == [] and check["verdict"] == "supported"
    assert len(resp["verification"]["attempts"]) == 2
    assert_tied(resp)


def test_a_withdrawn_claim_leaves_the_answer(make_client: MakeClient, stub_llm: StubLLM) -> None:
    stub_llm.reset("retry-abstains")
    with make_client(llm=llm_settings(stub_llm)) as client:
        resp = ask_llm_question(client)
    assert "PD-L1" not in resp["answer"]
    assert resp["answer"] == NO_EVIDENCE and resp["citations"] == []
    a1, a2 = resp["verification"]["attempts"]
    assert a1["supported"] == 0 and a2["used"] is True and a2["failing"] == []
    assert_tied(resp)


def test_a_rewrite_repeating_a_kept_sentence_adds_nothing(
    make_client: MakeClient, stub_llm: StubLLM
) -> None:
    stub_llm.reset("retry-repeats")  # the rewrite repeats the supported sentence ("However, ...")
    with make_client(llm=llm_settings(stub_llm)) as client:
        resp = ask_llm_question(client)
    supported = stub_llm.replies[0].split(" [1]")[0]
    assert stub_llm.replies[1].startswith("However, ") and supported[1:] in stub_llm.replies[1]
    a1, a2 = resp["verification"]["attempts"]
    assert (a1["sentences"], a1["supported"]) == (2, 1)
    assert (a2["sentences"], a2["supported"], a2["used"]) == (1, 1, True)
    assert resp["answer"] == f"{supported[:-1]} [1]."
    assert_tied(resp)


def test_llm_error_during_regeneration_keeps_the_first_answer(
    make_client: MakeClient, stub_llm: StubLLM
) -> None:
    stub_llm.reset("retry-500")
    with make_client(llm=llm_settings(stub_llm)) as client:
        resp = ask_llm_question(client)
        r = client.post(
            "/v1/answer", json={"question": LLM_QUESTION, "top_k": LLM_TOP_K, "stream": True}
        )
    assert resp["generator"] == "llm" and resp["degraded"] is False
    a1, a2 = resp["verification"]["attempts"]
    assert a1["used"] is True and a1["answer"] == resp["answer"]
    assert resp["answer"].startswith(FAILING[:-1]) and "(⚠ " in resp["answer"]
    assert a2["used"] is False and a2["llm_requests"] == 1 and a2["sentences"] == 0
    assert "500" in a2["error"]
    assert_tied(resp)
    # streaming: the failure of the second request is recorded in the final event, not an error
    assert r.status_code == 200
    events = parse_sse(r.text)
    assert events[0][0] == "passages" and events[-1][0] == "final"
    final = events[-1][1]
    assert final["answer"] == resp["answer"]
    assert "500" in final["verification"]["attempts"][1]["error"]


def test_streamed_answer_is_regenerated(make_client: MakeClient, stub_llm: StubLLM) -> None:
    stub_llm.reset("retry-fixes")
    with make_client(llm=llm_settings(stub_llm)) as client:
        r = client.post(
            "/v1/answer", json={"question": LLM_QUESTION, "top_k": LLM_TOP_K, "stream": True}
        )
    events = parse_sse(r.text)
    # deltas are the first reply as the model wrote it; the final event is the verified rewrite
    streamed = "".join(d["text"] for n, d in events if n == "delta")
    assert streamed == UNSUPPORTED_TEXT
    final = events[-1][1]
    assert [a["used"] for a in final["verification"]["attempts"]] == [False, True]
    assert final["verification"]["all_supported"] is True and FAILING[:-1] not in final["answer"]
    assert stub_llm.requests[1]["body"].get("stream") in (None, False)
    assert_tied(final)


def test_report_sections_are_regenerated_once_each(
    make_client: MakeClient, stub_llm: StubLLM
) -> None:
    stub_llm.reset("retry-fixes")
    with make_client(llm=llm_settings(stub_llm)) as client:
        resp = ask_llm_question(client, mode="report")
    assert resp["generator"] == "llm" and resp["mode"] == "report"
    again = _regenerations(stub_llm)
    firsts = [r for r in stub_llm.requests if len(_users(r)) == 1 and "Passages:\n" in _users(r)[0]]
    a1, a2 = resp["verification"]["attempts"]
    assert a1["failing"] and a1["llm_requests"] == len(firsts)
    # at most one regeneration per section, each continuing that section's own conversation
    assert 1 <= len(again) == a2["llm_requests"] <= len(firsts)
    openings = [_users(r)[0] for r in firsts]
    assert len({_users(r)[0] for r in again}) == len(again)
    assert all(_users(r)[0] in openings for r in again)
    assert a2["used"] is True and a2["supported"] > a1["supported"]
    assert resp["answer"] == a2["answer"]
    for section in resp["sections"]:
        assert FAILING[:-1] not in section["text"]
    body, sep, _ = resp["answer"].rpartition("## Sources\n\n")
    assert sep
    assert_tied(resp, body)
