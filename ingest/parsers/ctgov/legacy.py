"""Legacy ClinicalTrials.gov ``<clinical_study>`` XML, converted to the API v2 layout so that one
builder (:mod:`ingest.parsers.ctgov.study`) makes the Document of both formats."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from lxml import etree

from core.errors import ParseError
from ingest.parsers.base import ParseResult, Source
from ingest.parsers.ctgov.legacy_fields import (
    drop_empty,
    enum_value,
    text_at,
    textblock_at,
    texts_at,
)
from ingest.parsers.ctgov.legacy_results import results_to_v2
from ingest.parsers.ctgov.study import NoNctId, build_document
from ingest.parsers.ctgov.values import JSON, PHASE_RE, dedupe, iso_date

_SECURE_XML = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)


def looks_like_ctgov_xml(head: bytes) -> bool:
    """True when the first bytes (a few KB) look like a legacy ``<clinical_study>`` record."""
    return b"<clinical_study" in head


def parse_ctgov_xml(source: Source) -> Iterator[ParseResult]:
    """One Document from a legacy ``<clinical_study>`` record (no network, no entities)."""
    try:
        root = etree.fromstring(source.data, parser=_SECURE_XML)
    except etree.XMLSyntaxError as exc:
        raise ParseError(source.name, f"malformed XML: {exc}") from exc
    if root is None or root.tag != "clinical_study":
        tag = getattr(root, "tag", None)
        raise ParseError(source.name, f"not a <clinical_study> record (root <{tag}>)")
    study = to_v2_study(root)
    try:
        yield build_document(study, source.name, links_source="ctgov-legacy-references")
    except NoNctId as exc:
        reason = "no nct_id" if str(exc) == "no nctId" else str(exc).replace("nctId", "nct_id")
        raise ParseError(source.name, reason) from exc


def _status(raw: str | None) -> str | None:
    value = enum_value(raw)
    return "UNKNOWN" if value == "UNKNOWN_STATUS" else value


def _phases(raw: str | None) -> list[str]:
    """'Phase 1/Phase 2' -> ['PHASE1', 'PHASE2']; 'N/A' -> ['NA']; 'Early Phase 1' -> [...]."""
    if not raw:
        return []
    s = raw.strip().upper()
    if s in ("N/A", "NA", "NOT APPLICABLE"):
        return ["NA"]
    phases = []
    for part in s.split("/"):
        part = part.strip()
        m = PHASE_RE.match(part)
        if m:
            phases.append(("EARLY_" if m.group(1) else "") + "PHASE" + m.group(2))
        elif part in ("N/A", "NA"):
            phases.append("NA")
        elif value := enum_value(part):
            phases.append(value)
    return dedupe(phases)


def _date_at(el: Any, tag: str) -> JSON | None:
    found = el.find(tag)
    if found is None or not (found.text or "").strip():
        return None
    raw = found.text.strip()
    kind = {"Actual": "ACTUAL", "Anticipated": "ESTIMATED", "Estimate": "ESTIMATED"}.get(
        found.get("type") or ""
    )
    struct: JSON = {"date": iso_date(raw) or raw}
    if kind:
        struct["type"] = kind
    return struct


def to_v2_study(root: Any) -> JSON:
    """Convert a legacy ``<clinical_study>`` to the API v2 layout used by the builder.

    Status, phases and study type become v2 enum strings; descriptive values (allocation,
    masking, intervention type ...) stay as the legacy text, which the builder shows as is.
    """
    raw_type = text_at(root, "study_type") or ""
    registry = "[patient registry]" in raw_type.lower()
    study_type = enum_value(re.sub(r"\[.*?\]", "", raw_type))
    design_el = root.find("study_design_info")
    design_info: JSON = {}
    if design_el is not None:
        masking = text_at(design_el, "masking")
        design_info = drop_empty(
            {
                "allocation": text_at(design_el, "allocation"),
                "interventionModel": text_at(design_el, "intervention_model"),
                "interventionModelDescription": text_at(
                    design_el, "intervention_model_description"
                ),
                "primaryPurpose": text_at(design_el, "primary_purpose"),
                "observationalModel": text_at(design_el, "observational_model"),
                "timePerspective": text_at(design_el, "time_perspective"),
                "maskingInfo": drop_empty(
                    {"masking": masking, "description": text_at(design_el, "masking_description")}
                ),
            }
        )
    enrol = root.find("enrollment")
    enrollment: JSON = {}
    if enrol is not None and (enrol.text or "").strip():
        enrollment = drop_empty(
            {"count": enrol.text.strip(), "type": enum_value(enrol.get("type"))}
        )
    bio = drop_empty(
        {
            "retention": text_at(root, "biospec_retention"),
            "description": textblock_at(root, "biospec_descr/textblock"),
        }
    )

    healthy_raw = (text_at(root, "eligibility/healthy_volunteers") or "").lower()
    healthy = (
        True
        if healthy_raw.startswith(("yes", "accepts"))
        else False
        if healthy_raw.startswith("no")
        else None
    )

    def age(tag: str) -> str | None:
        value = text_at(root, tag)
        return None if not value or value.upper() in ("N/A", "NA") else value

    def outcomes(tag: str) -> list[JSON]:
        return [
            drop_empty(
                {
                    "measure": text_at(o, "measure"),
                    "timeFrame": text_at(o, "time_frame"),
                    "description": text_at(o, "description"),
                }
            )
            for o in root.findall(tag)
        ]

    references = [
        drop_empty({"pmid": text_at(r, "PMID"), "citation": text_at(r, "citation"), "type": kind})
        for tag, kind in (("reference", "BACKGROUND"), ("results_reference", "RESULT"))
        for r in root.findall(tag)
    ]
    officials = [
        drop_empty(
            {
                "name": text_at(o, "last_name"),
                "affiliation": text_at(o, "affiliation"),
                "role": text_at(o, "role"),
            }
        )
        for o in root.findall("overall_official")
    ]
    locations = [
        drop_empty({"country": text_at(loc, "facility/address/country")})
        for loc in root.findall("location")
    ]

    protocol: JSON = {
        "identificationModule": drop_empty(
            {
                "nctId": text_at(root, "id_info/nct_id"),
                "briefTitle": text_at(root, "brief_title"),
                "officialTitle": text_at(root, "official_title"),
                "acronym": text_at(root, "acronym"),
            }
        ),
        "statusModule": drop_empty(
            {
                "overallStatus": _status(text_at(root, "overall_status")),
                "lastKnownStatus": _status(text_at(root, "last_known_status")),
                "whyStopped": text_at(root, "why_stopped"),
                "startDateStruct": _date_at(root, "start_date"),
                "primaryCompletionDateStruct": _date_at(root, "primary_completion_date"),
                "completionDateStruct": _date_at(root, "completion_date"),
                "studyFirstPostDateStruct": _date_at(root, "study_first_posted"),
                "resultsFirstPostDateStruct": _date_at(root, "results_first_posted"),
                "lastUpdatePostDateStruct": _date_at(root, "last_update_posted"),
            }
        ),
        "sponsorCollaboratorsModule": drop_empty(
            {
                "leadSponsor": drop_empty({"name": text_at(root, "sponsors/lead_sponsor/agency")}),
                "collaborators": [
                    {"name": n} for n in texts_at(root, "sponsors/collaborator/agency")
                ],
            }
        ),
        "descriptionModule": drop_empty(
            {
                "briefSummary": textblock_at(root, "brief_summary/textblock"),
                "detailedDescription": textblock_at(root, "detailed_description/textblock"),
            }
        ),
        "conditionsModule": drop_empty(
            {"conditions": texts_at(root, "condition"), "keywords": texts_at(root, "keyword")}
        ),
        "designModule": drop_empty(
            {
                "studyType": study_type,
                "patientRegistry": True if registry else None,
                "phases": _phases(text_at(root, "phase")),
                "designInfo": design_info,
                "enrollmentInfo": enrollment,
                "targetDuration": text_at(root, "target_duration"),
                "bioSpec": bio,
            }
        ),
        "armsInterventionsModule": drop_empty(
            {
                "armGroups": [
                    drop_empty(
                        {
                            "label": text_at(g, "arm_group_label"),
                            "type": text_at(g, "arm_group_type"),
                            "description": text_at(g, "description"),
                        }
                    )
                    for g in root.findall("arm_group")
                ],
                "interventions": [
                    drop_empty(
                        {
                            "type": text_at(i, "intervention_type"),
                            "name": text_at(i, "intervention_name"),
                            "description": text_at(i, "description"),
                            "otherNames": texts_at(i, "other_name"),
                        }
                    )
                    for i in root.findall("intervention")
                ],
            }
        ),
        "outcomesModule": drop_empty(
            {
                "primaryOutcomes": outcomes("primary_outcome"),
                "secondaryOutcomes": outcomes("secondary_outcome"),
                "otherOutcomes": outcomes("other_outcome"),
            }
        ),
        "eligibilityModule": drop_empty(
            {
                "eligibilityCriteria": textblock_at(root, "eligibility/criteria/textblock"),
                "studyPopulation": textblock_at(root, "eligibility/study_pop/textblock"),
                "samplingMethod": text_at(root, "eligibility/sampling_method"),
                "sex": text_at(root, "eligibility/gender"),
                "genderDescription": text_at(root, "eligibility/gender_description"),
                "minimumAge": age("eligibility/minimum_age"),
                "maximumAge": age("eligibility/maximum_age"),
                "healthyVolunteers": healthy,
            }
        ),
        "contactsLocationsModule": drop_empty(
            {
                "overallOfficials": officials,
                "locations": locations,
                "countries": texts_at(root, "location_countries/country"),
            }
        ),
        "referencesModule": drop_empty({"references": references}),
    }
    study: JSON = {"protocolSection": protocol}
    derived = drop_empty(
        {
            "conditionBrowseModule": drop_empty(
                {"meshes": [{"term": t} for t in texts_at(root, "condition_browse/mesh_term")]}
            ),
            "interventionBrowseModule": drop_empty(
                {"meshes": [{"term": t} for t in texts_at(root, "intervention_browse/mesh_term")]}
            ),
        }
    )
    if derived:
        study["derivedSection"] = derived
    results_el = root.find("clinical_results")
    study["hasResults"] = results_el is not None
    if results_el is not None:
        study["resultsSection"] = results_to_v2(results_el)
    return study
