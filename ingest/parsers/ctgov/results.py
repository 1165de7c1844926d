"""Posted results of a CT.gov v2 study (participant flow, baseline, outcome measures, adverse
events) as bounded text: long lists are capped and what was left out is counted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ingest.parsers.ctgov.values import (
    JSON,
    Counts,
    capped,
    child,
    children,
    clean,
    clip,
    human_words,
    join_blocks,
    join_lines,
    labelled,
    lower_human_words,
    text_of,
    texts_of,
)

# Caps that keep one huge record from exploding the index; overflow is counted in `unsupported`.
MAX_GROUP_VALUES = 10  # result values shown per row (one per group)
MAX_FLOW_PERIODS = 5
MAX_FLOW_ROWS = 12  # milestones / withdrawal reasons per period
MAX_BASELINE_MEASURES = 15
MAX_OUTCOME_MEASURES = 25
MAX_CATEGORY_ROWS = 12  # class/category rows per measure
MAX_ANALYSES = 3  # statistical analyses per outcome measure
MAX_AE_TERMS = 15  # serious / other adverse-event terms (each)
MAX_GROUP_DESCRIPTION = 300  # characters of a result group's description
MAX_RESULTS_CHARS = 30_000


def _group_titles(groups: list[JSON]) -> dict[str, str]:
    return {gid: (text_of(g, "title") or gid) for g in groups if (gid := text_of(g, "id"))}


def _group_values(
    pairs: list[tuple[str | None, str]], titles: dict[str, str], counts: Counts
) -> str:
    """'Arm A 12; Arm B 15' from (groupId, value) pairs, at most MAX_GROUP_VALUES of them."""
    shown = capped(pairs, MAX_GROUP_VALUES, counts, "results.group_values")
    return "; ".join(f"{titles.get(g or '', g or '?')} {v}" for g, v in shown)


def _measurement(m: JSON) -> str:
    value = text_of(m, "value") or "NA"
    if spread := text_of(m, "spread"):
        value += f" ({spread})"
    lo, hi = text_of(m, "lowerLimit"), text_of(m, "upperLimit")
    if lo or hi:
        value += f" [{lo or 'NA'} to {hi or 'NA'}]"
    if comment := text_of(m, "comment"):
        value += f" ({clip(comment, 120)})"
    return value


def _measure_rows(measure: JSON, titles: dict[str, str], counts: Counts) -> list[str]:
    rows: list[tuple[str, list[JSON]]] = []
    for cls in children(measure, "classes"):
        ctitle = text_of(cls, "title")
        for cat in children(cls, "categories"):
            label = " / ".join(t for t in (ctitle, text_of(cat, "title")) if t)
            rows.append((label, children(cat, "measurements")))
    out = []
    for label, ms in capped(rows, MAX_CATEGORY_ROWS, counts, "results.category_rows"):
        vals = _group_values([(text_of(m, "groupId"), _measurement(m)) for m in ms], titles, counts)
        if vals:
            out.append(f"  {label}: {vals}" if label else f"  {vals}")
    return out


def _measure_head(measure: JSON) -> str:
    detail = [
        d
        for d in (
            lower_human_words(text_of(measure, "paramType")),
            lower_human_words(text_of(measure, "dispersionType")),
            text_of(measure, "unitOfMeasure"),
        )
        if d
    ]
    return f" ({'; '.join(detail)})" if detail else ""


def _denoms(module: JSON, titles: dict[str, str], counts: Counts) -> str | None:
    for d in children(module, "denoms"):
        pairs = [
            (text_of(c, "groupId"), v) for c in children(d, "counts") if (v := text_of(c, "value"))
        ]
        if pairs:
            units = (text_of(d, "units") or "participants").lower()
            return f"Analysed ({units}): {_group_values(pairs, titles, counts)}"
    return None


def _groups_block(groups: list[JSON], counts: Counts, seen: set[str]) -> str:
    """'Groups:' with each group's description, skipping groups already described above."""
    rows = []
    for g in capped(groups, MAX_GROUP_VALUES, counts, "results.groups"):
        title = text_of(g, "title")
        desc = clip(clean(text_of(g, "description")), MAX_GROUP_DESCRIPTION)
        if not title or f"{title}\n{desc}" in seen:
            continue
        seen.add(f"{title}\n{desc}")
        rows.append(f"- {title}: {desc}" if desc else f"- {title}")
    return "Groups:\n" + "\n".join(rows) if rows else ""


def _titled(title: str, blocks: list[str | None]) -> str:
    body = join_blocks(blocks)
    return f"{title}\n\n{body}" if body else ""


def _flow_text(flow: JSON, counts: Counts, seen: set[str]) -> str:
    groups = children(flow, "groups")
    titles = _group_titles(groups)
    periods = []
    for p in capped(children(flow, "periods"), MAX_FLOW_PERIODS, counts, "results.flow_periods"):
        rows = []
        for key, sub in (("milestones", "achievements"), ("dropWithdraws", "reasons")):
            for m in capped(children(p, key), MAX_FLOW_ROWS, counts, "results.flow_rows"):
                pairs = [
                    (text_of(a, "groupId"), n)
                    for a in children(m, sub)
                    if (n := text_of(a, "numSubjects"))
                ]
                label = text_of(m, "type") or "?"
                if key == "dropWithdraws":
                    label = f"Withdrawn ({label.lower()})"
                if pairs:
                    rows.append(f"  {label}: {_group_values(pairs, titles, counts)}")
        if rows:
            periods.append(f"Period: {text_of(p, 'title') or 'Overall study'}\n" + "\n".join(rows))
    return _titled(
        "Participant flow",
        [
            labelled("Recruitment details", clean(text_of(flow, "recruitmentDetails"))),
            labelled("Pre-assignment details", clean(text_of(flow, "preAssignmentDetails"))),
            _groups_block(groups, counts, seen),
            *periods,
        ],
    )


def _baseline_text(base: JSON, counts: Counts, seen: set[str]) -> str:
    groups = children(base, "groups")
    titles = _group_titles(groups)
    measures = []
    for m in capped(
        children(base, "measures"), MAX_BASELINE_MEASURES, counts, "results.baseline_measures"
    ):
        title = text_of(m, "title")
        rows = _measure_rows(m, titles, counts)
        if title and rows:
            measures.append(f"{title}{_measure_head(m)}:\n" + "\n".join(rows))
    return _titled(
        "Baseline characteristics",
        [
            labelled("Population", clean(text_of(base, "populationDescription"))),
            _groups_block(groups, counts, seen),
            _denoms(base, titles, counts),
            *measures,
        ],
    )


def _analysis_text(a: JSON, titles: dict[str, str]) -> str:
    groups = " vs ".join(titles.get(g, g) for g in texts_of(a, "groupIds"))
    parts = []
    if p := text_of(a, "pValue"):
        parts.append(f"p = {p}" if p[0].isdigit() else f"p {p}")
    if method := text_of(a, "statisticalMethod"):
        parts.append(method)
    if value := text_of(a, "paramValue"):
        est = f"{text_of(a, 'paramType') or 'estimate'} {value}"
        lo, hi = text_of(a, "ciLowerLimit"), text_of(a, "ciUpperLimit")
        if lo or hi:
            pct = text_of(a, "ciPctValue")
            est += f" [{pct + '% ' if pct else ''}CI {lo or 'NA'} to {hi or 'NA'}]"
        parts.append(est)
    if desc := text_of(a, "groupDescription"):
        parts.append(clip(desc, 200))
    if not parts:
        return ""
    return (
        f"  Analysis ({groups}): " + "; ".join(parts)
        if groups
        else "  Analysis: " + "; ".join(parts)
    )


def _outcome_measures_text(module: JSON, counts: Counts, seen: set[str]) -> str:
    blocks: list[str | None] = []
    for o in capped(
        children(module, "outcomeMeasures"),
        MAX_OUTCOME_MEASURES,
        counts,
        "results.outcome_measures",
    ):
        title = clean(text_of(o, "title"))
        if not title:
            continue
        groups = children(o, "groups")
        titles = _group_titles(groups)
        kind = human_words(text_of(o, "type"))
        analyses = capped(children(o, "analyses"), MAX_ANALYSES, counts, "results.analyses")
        rows = _measure_rows(o, titles, counts)
        blocks.append(
            join_lines(
                [
                    f"{kind + ' outcome' if kind else 'Outcome'}: {title}{_measure_head(o)}",
                    labelled("Time frame", clean(text_of(o, "timeFrame"))),
                    labelled("Description", clean(text_of(o, "description"))),
                    labelled("Population", clean(text_of(o, "populationDescription"))),
                    _groups_block(groups, counts, seen),
                    _denoms(o, titles, counts),
                    "Values:\n" + "\n".join(rows) if rows else None,
                    *(_analysis_text(a, titles) for a in analyses),
                ]
            )
        )
    return _titled("Outcome measures", blocks)


def _count(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return 0


def _event_terms(events: list[JSON], titles: dict[str, str], label: str, counts: Counts) -> str:
    """The most frequent adverse-event terms with participants affected / at risk per group."""
    named = [e for e in events if text_of(e, "term")]
    named.sort(key=lambda e: -sum(_count(st.get("numAffected")) for st in children(e, "stats")))
    rows = []
    for e in capped(named, MAX_AE_TERMS, counts, "results.adverse_event_terms"):
        organ = text_of(e, "organSystem")
        pairs = []
        for st in children(e, "stats"):
            affected, at_risk = text_of(st, "numAffected"), text_of(st, "numAtRisk")
            if affected is not None:
                pairs.append(
                    (text_of(st, "groupId"), f"{affected}/{at_risk}" if at_risk else affected)
                )
        values = _group_values(pairs, titles, counts)
        rows.append(f"- {text_of(e, 'term')}{' (' + organ + ')' if organ else ''}: {values}")
    return f"{label} (most frequent; affected/at risk):\n" + "\n".join(rows) if rows else ""


def _adverse_text(ae: JSON, counts: Counts, seen: set[str]) -> str:
    groups = children(ae, "eventGroups")
    titles = _group_titles(groups)
    rows = []
    for g in capped(groups, MAX_GROUP_VALUES, counts, "results.groups"):
        title = text_of(g, "title")
        if not title:
            continue
        parts = []
        for key, label in (("deaths", "deaths"), ("serious", "serious"), ("other", "other")):
            affected, at_risk = text_of(g, f"{key}NumAffected"), text_of(g, f"{key}NumAtRisk")
            if affected is not None:
                parts.append(f"{label} {affected}{'/' + at_risk if at_risk else ''}")
        rows.append(f"- {title}: " + ", ".join(parts) if parts else f"- {title}")
    return _titled(
        "Adverse events",
        [
            labelled("Time frame", clean(text_of(ae, "timeFrame"))),
            labelled("Description", clean(text_of(ae, "description"))),
            labelled("Frequency threshold for other events", text_of(ae, "frequencyThreshold")),
            "Participants affected / at risk:\n" + "\n".join(rows) if rows else None,
            _event_terms(children(ae, "seriousEvents"), titles, "Serious adverse events", counts),
            _event_terms(children(ae, "otherEvents"), titles, "Other adverse events", counts),
        ],
    )


def results_text(results: JSON, counts: Counts) -> str:
    """Posted results as bounded text; overflow is counted in ``counts``."""
    seen: set[str] = set()
    parts: list[tuple[str, Callable[[JSON, Counts, set[str]], str]]] = [
        ("participantFlowModule", _flow_text),
        ("baselineCharacteristicsModule", _baseline_text),
        ("outcomeMeasuresModule", _outcome_measures_text),
        ("adverseEventsModule", _adverse_text),
    ]
    blocks = [fn(child(results, key), counts, seen) for key, fn in parts if child(results, key)]
    limits = clean(
        text_of(child(child(results, "moreInfoModule"), "limitationsAndCaveats"), "description")
    )
    if limits:
        blocks.append(f"Limitations and caveats: {limits}")
    text = join_blocks(blocks)
    if len(text) > MAX_RESULTS_CHARS:
        cut = text.rfind("\n", 0, MAX_RESULTS_CHARS)
        cut = cut if cut > 0 else MAX_RESULTS_CHARS
        counts["results.chars"] = len(text) - cut
        text = text[:cut].rstrip()
    return text
