"""``POST /v1/check``: check a report written elsewhere against the indexed literature."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from core.verify import make_verifier
from service.check.checker import ReportChecker
from service.check.models import EXAMPLE_REPORT, CheckRequest, CheckResponse
from service.deps import AuthDep, EngineDep
from service.errors import error_responses
from service.guards import JSONRoute

router = APIRouter(prefix="/v1", tags=["check"], dependencies=[AuthDep], route_class=JSONRoute)

CHECK_DOC = """Check a report written elsewhere (Markdown or plain text) against the indexed
literature.

The text is split into claim sentences (headings, metadata lines, questions, lead-ins and
fragments are skipped and listed in `skipped`). For each claim the best `top_k` passages are
retrieved, plus the best passages of every stored document the sentence cites, and the verifier
judges the claim against each passage on its own. `verdict`: **supported** (a passage states it),
**contradicted** (a passage states the opposite and none supports it) or **no_evidence** (no
indexed passage states it); `evidence` holds the deciding passages with their quotes.

`references` lists every NCT number, PMID, PMCID, DOI and URL the report writes, with `found`
(a stored document has that identifier) and the stored title; `claims[].citations` says whether
each cited stored record supports the sentence, and `cited_not_supporting` names the ids whose
record does not.
"""


@router.post(
    "/check",
    response_model=CheckResponse,
    responses=error_responses(400, 401, 415, 422, 503),
    summary="Check a report's claims and references against the indexed literature",
    description=CHECK_DOC,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "examples": {
                        "report": {"summary": "A report", "value": {"text": EXAMPLE_REPORT}}
                    }
                }
            }
        }
    },
)
def check(req: CheckRequest, engine: EngineDep) -> Response:
    """See the description."""
    checker = ReportChecker(
        engine.retriever, make_verifier(engine.settings.answer, engine.embedder)
    )
    result = checker.check(req.text, req.top_k).result
    # serialised once, from the typed result (FastAPI would validate it again)
    return Response(result.model_dump_json(), media_type="application/json")
