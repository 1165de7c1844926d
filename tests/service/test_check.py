"""``POST /v1/check`` over the real service (uvicorn on loopback, the sample trials and a PubMed
record in a real Edge store, API key required) and ``litrag check`` as a subprocess on a copy of
that store: the seed report, a report that contradicts a stored abstract, the JSON shape and the
errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.web.server import Live, live_service

SEED = Path("/work/shared/seeds/ai-report-mrna-beyond-covid.md")
LITRAG = Path(sys.executable).with_name("litrag")
# A real sentence of the stored abstract (PMID 29768149), negated; and one kept as written.
NEGATED = "The rate of adherence in the budesonide maintenance group was not 78.9%."
QUOTED = (
    "Exacerbation rates with the two budesonide-containing regimens were similar and were lower "
    "than the rate with terbutaline."
)
CONTRADICTING_REPORT = f"""# Asthma regimens

{NEGATED[:-1]} (1). Was the trial blinded?

{QUOTED} [1]

## Sources

1. PMID: 29768149
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Live:
    """The session's real service."""
    return live_service(tmp_path_factory, request)


def post(live: Live, body: Any, *, key: bool = True) -> httpx.Response:
    headers = {"Authorization": f"Bearer {live.api_key}"} if key else {}
    return httpx.post(f"{live.base_url}/v1/check", json=body, headers=headers, timeout=600)


def claim_with(result: dict[str, Any], words: str) -> dict[str, Any]:
    found = [c for c in result["claims"] if words in c["text"]]
    assert len(found) == 1, [c["text"] for c in result["claims"]]
    return found[0]


def assert_shape(result: dict[str, Any]) -> None:
    """The documented JSON: claims with text, verdict and evidence; references with the id as
    written, kind and found; a summary that counts them."""
    assert set(result) >= {"claims", "references", "skipped", "summary", "method", "timings"}
    for n, c in enumerate(result["claims"], 1):
        assert c["n"] == n and c["text"]
        assert c["verdict"] in ("supported", "contradicted", "no_evidence")
        assert (c["verdict"] == "no_evidence") == (not c["evidence"])
        for e in c["evidence"]:
            assert e["verdict"] == c["verdict"]
            assert e["quote"]["text"] and e["chunk_id"] and e["doc_id"]
    for r in result["references"]:
        assert r["kind"] in ("nct", "pmid", "pmcid", "doi", "url")
        assert isinstance(r["found"], bool) and r["id"]
        assert r["found"] == bool(r["doc_ids"]) and (r["title"] is not None) == r["found"]
    s = result["summary"]
    assert s["claims"] == len(result["claims"])
    assert s["supported"] + s["contradicted"] + s["no_evidence"] == s["claims"]
    for v in ("supported", "contradicted", "no_evidence"):
        assert s[v] == sum(c["verdict"] == v for c in result["claims"])
    assert s["references_found"] + s["references_not_found"] == len(result["references"])


def test_seed_report_pd_l1_claim_is_not_supported_and_its_nct_is_not_in_the_store(
    live: Live,
) -> None:
    r = post(live, {"text": SEED.read_text()})
    assert r.status_code == 200, r.text
    result = r.json()
    assert_shape(result)
    pd_l1 = claim_with(result, "mRNA-4157")
    assert pd_l1["verdict"] != "supported"
    assert [c["label"] for c in pd_l1["citations"]] == ["1"]
    assert not pd_l1["citations"][0]["found"]
    nct = [x for x in result["references"] if x["kind"] == "nct"]
    assert [(x["id"], x["found"], x["note"]) for x in nct] == [
        ("NCT04530518", False, "not in the store")
    ]
    assert claim_with(result, "mRNA-1247")["citations"][0]["verdict"] == "not_in_store"
    # URLs without an identifier cannot name a stored document
    urls = [x for x in result["references"] if x["kind"] == "url"]
    assert len(urls) == 4 and not any(x["found"] for x in urls)
    # headings, the metadata lines and the lead-in are not claims
    skipped = {s["text"]: s["reason"] for s in result["skipped"]}
    assert skipped["Applications in Cancer Treatment"] == "heading"
    assert skipped["These include:"].startswith("lead-in")
    assert not any(c["text"].startswith(("Generated", "Query")) for c in result["claims"])


def test_contradicting_report_resolves_its_pmid_and_flags_the_cited_record(live: Live) -> None:
    r = post(live, {"text": CONTRADICTING_REPORT})
    assert r.status_code == 200, r.text
    result = r.json()
    assert_shape(result)
    negated = claim_with(result, "was not 78.9%")
    assert negated["verdict"] == "contradicted", negated
    assert negated["evidence"][0]["doc_id"] == "pmid:29768149"
    assert negated["cited_not_supporting"] == ["PMID: 29768149"]
    assert negated["citations"][0]["verdict"] == "contradicted"
    quoted = claim_with(result, "were similar and were lower")
    assert quoted["verdict"] == "supported"
    assert quoted["evidence"][0]["doc_id"] == "pmid:29768149"
    assert quoted["citations"][0]["verdict"] == "supported" and not quoted["cited_not_supporting"]
    (pmid,) = result["references"]
    assert pmid["kind"] == "pmid" and pmid["found"] and pmid["doc_ids"] == ["pmid:29768149"]
    assert pmid["title"] == "Inhaled Combined Budesonide-Formoterol as Needed in Mild Asthma."
    assert sorted(pmid["claims"]) == [negated["n"], quoted["n"]]
    assert {s["text"]: s["reason"] for s in result["skipped"]}["Was the trial blinded?"] == (
        "question"
    )


@pytest.mark.parametrize(
    ("body", "status", "kind", "field"),
    [
        ({"text": ""}, 422, "invalid_request", "text"),
        ({"text": " \n\t"}, 422, "invalid_request", "text"),
        ({"text": "word " * 10_001}, 422, "invalid_request", "text"),
        (
            {"text": "A claim about mRNA vaccines in cancer.", "top_k": 0},
            422,
            "invalid_request",
            "top_k",
        ),
        ({}, 422, "invalid_request", "text"),
        ({"text": "x", "extra": 1}, 422, "invalid_request", "extra"),
    ],
)
def test_bad_input_is_a_clear_error_naming_the_field(
    live: Live, body: dict[str, Any], status: int, kind: str, field: str
) -> None:
    r = post(live, body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["type"] == kind
    assert field in err["message"]


def test_a_text_without_claims_is_checked_and_has_none(live: Live) -> None:
    r = post(live, {"text": "# Only a heading\n\nIs this a question? Yes."})
    assert r.status_code == 200, r.text
    result = r.json()
    assert_shape(result)
    assert result["claims"] == [] and result["summary"]["claims"] == 0
    assert [(s["text"], s["reason"]) for s in result["skipped"]] == [
        ("Only a heading", "heading"),
        ("Is this a question?", "question"),
        ("Yes.", "fewer than 4 words"),
    ]


def test_the_api_key_is_required(live: Live) -> None:
    r = post(live, {"text": NEGATED}, key=False)
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "invalid_api_key"


def test_openapi_documents_the_route(live: Live) -> None:
    doc = httpx.get(f"{live.base_url}/openapi.json", timeout=30).json()
    op = doc["paths"]["/v1/check"]["post"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/CheckResponse"
    )
    assert {"400", "401", "415", "422", "503"} <= set(op["responses"])
    request = doc["components"]["schemas"]["CheckRequest"]["properties"]["text"]
    assert request["maxLength"] == 50_000 and request["minLength"] == 1


# -- the CLI --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_store(live: Live, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the ingested store for the CLI (an Edge store is opened by one process)."""
    path = tmp_path_factory.mktemp("check-cli") / "store"
    shutil.copytree(live.spare_store, path)
    return path


def run_cli(
    store: Path, cwd: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LITRAG_")}
    env["LITRAG_STORE__PATH"] = str(store)
    return subprocess.run(
        [str(LITRAG), "check", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,  # no .env there
        timeout=900,
        check=False,
    )


def test_cli_exits_1_on_a_contradicted_claim_and_writes_json(
    cli_store: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.md"
    report.write_text(CONTRADICTING_REPORT)
    proc = run_cli(cli_store, tmp_path, str(report), "--format", "json")
    assert proc.returncode == 1, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert_shape(result)
    assert claim_with(result, "was not 78.9%")["verdict"] == "contradicted"


def test_cli_markdown_of_the_seed_from_stdin(cli_store: Path, tmp_path: Path) -> None:
    proc = run_cli(cli_store, tmp_path, "-", stdin=SEED.read_text())
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    md = proc.stdout
    assert md.startswith("# Report check")
    line = next(x for x in md.splitlines() if "mRNA-4157" in x and "PD-L1" in x and "targets" in x)
    assert "✓ supported" not in line
    assert "| NCT04530518 | nct | not in the store |" in md
    # the report's URLs are shown as code, never as links; its headings sit below ours
    assert "](http" not in md and "<https://www.nci" not in md
    lines = md.splitlines()
    assert "### Applications in Cancer Treatment" not in lines
    assert "##### Applications in Cancer Treatment" in lines
    contradicted = "**\\[✗ contradicted by" in md  # a verdict mark, not the summary table
    assert proc.returncode == (1 if contradicted else 0)


def test_cli_usage_errors_exit_2(cli_store: Path, tmp_path: Path) -> None:
    missing = run_cli(cli_store, tmp_path, str(tmp_path / "nope.md"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    empty = run_cli(cli_store, tmp_path, "-", stdin="  \n")
    assert empty.returncode == 2 and "empty" in empty.stderr
