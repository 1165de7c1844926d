"""A trial record's facts as one sentence, every value copied from the stored record.

"NCT05933577 is a phase 3 interventional trial in Melanoma; its overall status is active, not
recruiting." — phase, study type, interventions, conditions and status come from the record's
fields (``TrialInfo``); the sentence cites the record's passages that state them and is verified
like any other sentence (the verifier reads a record's cited passages together).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from core.schemas import ScoredChunk, StoredChunk, TrialInfo
from core.verify.fields import check_fields, field_spans
from service.answer.draft import DraftSentence

_MAX_VALUES = 3


def _words(value: str) -> str:
    """A record code as words: ``ACTIVE_NOT_RECRUITING`` → ``active, not recruiting``."""
    text = value.replace("_", " ").lower()
    return re.sub(r"\b(active|enrolling) not\b", r"\1, not", text)


def phase_words(phases: Sequence[str]) -> list[str]:
    """``['PHASE1', 'PHASE2']`` → ``['phase 1', 'phase 2']``; ``NA`` and unknown codes are left
    out."""
    out = []
    for p in phases:
        m = re.fullmatch(r"(EARLY_)?PHASE(\d)", p)
        if m:
            out.append(("early " if m.group(1) else "") + f"phase {m.group(2)}")
    return out


def _listing(values: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c`` (the facts hold at most ``_MAX_VALUES`` of a field)."""
    shown = [v.strip() for v in values if v.strip()]
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + " and " + shown[-1]


def trial_sentence_text(nct_id: str, facts: Sequence[tuple[str, str]]) -> str:
    """The facts as one sentence (no citation markers)."""
    of: dict[str, list[str]] = {}
    for label, value in facts:
        of.setdefault(label, []).append(value)
    phase = "/".join(of.get("Phase", []))
    study_type = (of.get("Study type") or [""])[0]
    kind = "trial"
    if study_type == "interventional":
        kind = "interventional trial"
    elif study_type:
        kind = f"{study_type} study"
    head = f"{phase} {kind}".strip()
    article = "an" if head[0] in "aeiou" else "a"
    text = f"{nct_id} is {article} {head}"
    if of.get("Interventions"):
        text += f" of {_listing(of['Interventions'])}"
    if of.get("Conditions"):
        text += f" in {_listing(of['Conditions'])}"
    if of.get("Overall status"):
        text += f"; its overall status is {of['Overall status'][0]}"
    return text + "."


def trial_facts(trial: TrialInfo) -> list[tuple[str, str]]:
    """The (field label, value) pairs the sentence states, as the record's passages label them."""
    facts = [("Phase", phase) for phase in phase_words(trial.phases)]
    if trial.study_type:
        facts.append(("Study type", _words(trial.study_type)))
    facts += [("Interventions", v) for v in trial.interventions[:_MAX_VALUES]]
    facts += [("Conditions", v) for v in trial.conditions[:_MAX_VALUES]]
    if trial.overall_status:
        facts.append(("Overall status", _words(trial.overall_status)))
    return facts


def trial_sentence(
    hit: ScoredChunk, record: Sequence[StoredChunk], section: str | None = None
) -> tuple[DraftSentence, list[ScoredChunk]] | None:
    """The facts sentence of ``hit``'s trial and the record passages it cites (those with the
    fields it states), scored as ``hit``; None for a document that is not a trial."""
    trial = hit.doc.trial
    if trial is None or not record:
        return None
    facts = trial_facts(trial)
    labels = {label.lower() for label, _ in facts}
    cited = [
        ScoredChunk(chunk=c.chunk, doc=c.doc, score=hit.score)
        for c in sorted(record, key=lambda c: c.chunk.ordinal)
        if labels & field_spans(c.chunk.text).keys()
    ]
    # only values the cited passages state in their field (a long list may be cut by chunking)
    facts = [f for f in facts if check_fields([f], cited).supported]
    if not cited or not facts:
        return None
    text = trial_sentence_text(trial.nct_id, facts)
    ids = [c.chunk.chunk_id for c in cited]
    return DraftSentence(text, ids, section, facts=facts), cited
