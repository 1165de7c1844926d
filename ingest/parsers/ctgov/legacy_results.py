"""Legacy ``<clinical_results>`` converted to the API v2 ``resultsSection`` layout."""

from __future__ import annotations

from typing import Any

from ingest.parsers.ctgov.legacy_fields import drop_empty, enum_value, text_at, texts_at
from ingest.parsers.ctgov.values import JSON


def _groups(el: Any) -> list[JSON]:
    return [
        drop_empty(
            {
                "id": g.get("group_id"),
                "title": text_at(g, "title"),
                "description": text_at(g, "description"),
            }
        )
        for g in el.findall("group_list/group")
    ]


def _measurements(el: Any) -> list[JSON]:
    return [
        drop_empty(
            {
                "groupId": m.get("group_id"),
                "value": m.get("value"),
                "spread": m.get("spread"),
                "lowerLimit": m.get("lower_limit"),
                "upperLimit": m.get("upper_limit"),
                "comment": (m.text or "").strip() or None,
            }
        )
        for m in el.findall("measurement_list/measurement")
    ]


def _classes(measure: Any) -> list[JSON]:
    return [
        drop_empty(
            {
                "title": text_at(cls, "title"),
                "categories": [
                    drop_empty({"title": text_at(cat, "title"), "measurements": _measurements(cat)})
                    for cat in cls.findall("category_list/category")
                ],
            }
        )
        for cls in measure.findall("class_list/class")
    ]


def _denoms(measure: Any) -> list[JSON]:
    return [
        {
            "units": text_at(a, "units"),
            "counts": [
                {"groupId": c.get("group_id"), "value": c.get("value")}
                for c in a.findall("count_list/count")
            ],
        }
        for a in measure.findall("analyzed_list/analyzed")
    ]


def _events(el: Any) -> tuple[list[JSON], dict[str, tuple[str | None, str | None]]]:
    """Event terms of serious/other events, and {group id: (affected, at risk)} of the Total row."""
    terms: list[JSON] = []
    totals: dict[str, tuple[str | None, str | None]] = {}
    if el is None:
        return terms, totals
    for cat in el.findall("category_list/category"):
        organ = text_at(cat, "title")
        for ev in cat.findall("event_list/event"):
            stats = [
                drop_empty(
                    {
                        "groupId": c.get("group_id"),
                        "numEvents": c.get("events"),
                        "numAffected": c.get("subjects_affected"),
                        "numAtRisk": c.get("subjects_at_risk"),
                    }
                )
                for c in ev.findall("counts")
            ]
            if organ == "Total":
                for c in ev.findall("counts"):
                    if gid := c.get("group_id"):
                        totals[gid] = (c.get("subjects_affected"), c.get("subjects_at_risk"))
                continue
            terms.append(
                drop_empty({"term": text_at(ev, "sub_title"), "organSystem": organ, "stats": stats})
            )
    return terms, totals


def results_to_v2(cr: Any) -> JSON:
    """A legacy ``<clinical_results>`` element as a v2 ``resultsSection``."""
    results: JSON = {}
    flow = cr.find("participant_flow")
    if flow is not None:
        periods = []
        for p in flow.findall("period_list/period"):
            milestones = [
                {
                    "type": text_at(m, "title"),
                    "achievements": [
                        {"groupId": c.get("group_id"), "numSubjects": c.get("count")}
                        for c in m.findall("participants_list/participants")
                    ],
                }
                for m in p.findall("milestone_list/milestone")
            ]
            drops = [
                {
                    "type": text_at(d, "title"),
                    "reasons": [
                        {"groupId": c.get("group_id"), "numSubjects": c.get("count")}
                        for c in d.findall("participants_list/participants")
                    ],
                }
                for d in p.findall("drop_withdraw_reason_list/drop_withdraw_reason")
            ]
            periods.append(
                {"title": text_at(p, "title"), "milestones": milestones, "dropWithdraws": drops}
            )
        results["participantFlowModule"] = drop_empty(
            {
                "recruitmentDetails": text_at(flow, "recruitment_details"),
                "preAssignmentDetails": text_at(flow, "pre_assignment_details"),
                "groups": _groups(flow),
                "periods": periods,
            }
        )
    base = cr.find("baseline")
    if base is not None:
        results["baselineCharacteristicsModule"] = drop_empty(
            {
                "populationDescription": text_at(base, "population"),
                "groups": _groups(base),
                "denoms": _denoms(base),
                "measures": [
                    drop_empty(
                        {
                            "title": text_at(m, "title"),
                            "description": text_at(m, "description"),
                            "paramType": text_at(m, "param"),
                            "dispersionType": text_at(m, "dispersion"),
                            "unitOfMeasure": text_at(m, "units"),
                            "classes": _classes(m),
                        }
                    )
                    for m in base.findall("measure_list/measure")
                ],
            }
        )
    outcomes = []
    for o in cr.findall("outcome_list/outcome"):
        m = o.find("measure")
        outcome: JSON = {
            "type": enum_value(text_at(o, "type")),
            "title": text_at(o, "title"),
            "description": text_at(o, "description"),
            "populationDescription": text_at(o, "population"),
            "timeFrame": text_at(o, "time_frame"),
            "groups": _groups(o),
        }
        if m is not None:
            outcome.update(
                {
                    "paramType": text_at(m, "param"),
                    "dispersionType": text_at(m, "dispersion"),
                    "unitOfMeasure": text_at(m, "units"),
                    "denoms": _denoms(m),
                    "classes": _classes(m),
                }
            )
        outcome["analyses"] = [
            drop_empty(
                {
                    "groupIds": texts_at(a, "group_id_list/group_id"),
                    "groupDescription": text_at(a, "groups_desc"),
                    "pValue": text_at(a, "p_value"),
                    "statisticalMethod": text_at(a, "method"),
                    "paramType": text_at(a, "param_type"),
                    "paramValue": text_at(a, "param_value"),
                    "ciPctValue": text_at(a, "ci_percent"),
                    "ciLowerLimit": text_at(a, "ci_lower_limit"),
                    "ciUpperLimit": text_at(a, "ci_upper_limit"),
                }
            )
            for a in o.findall("analysis_list/analysis")
        ]
        outcomes.append(drop_empty(outcome))
    if outcomes:
        results["outcomeMeasuresModule"] = {"outcomeMeasures": outcomes}
    events = cr.find("reported_events")
    if events is not None:
        serious, serious_totals = _events(events.find("serious_events"))
        other, other_totals = _events(events.find("other_events"))
        groups = []
        for g in _groups(events):
            gid = g.get("id") or ""
            s_aff, s_risk = serious_totals.get(gid, (None, None))
            o_aff, o_risk = other_totals.get(gid, (None, None))
            g.update(
                drop_empty(
                    {
                        "seriousNumAffected": s_aff,
                        "seriousNumAtRisk": s_risk,
                        "otherNumAffected": o_aff,
                        "otherNumAtRisk": o_risk,
                    }
                )
            )
            groups.append(g)
        results["adverseEventsModule"] = drop_empty(
            {
                "timeFrame": text_at(events, "time_frame"),
                "description": text_at(events, "desc"),
                "eventGroups": groups,
                "seriousEvents": serious,
                "otherEvents": other,
            }
        )
    limits = text_at(cr, "limitations_and_caveats")
    if limits:
        results["moreInfoModule"] = {"limitationsAndCaveats": {"description": limits}}
    return results
