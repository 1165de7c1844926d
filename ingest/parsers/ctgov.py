"""ClinicalTrials.gov records: API v2 JSON (study, page, array, JSON lines) and legacy XML.

Both formats end up in one shape: a legacy ``<clinical_study>`` is first converted to the API v2
layout (``protocolSection`` / ``resultsSection`` modules, enum-style status, phases and study
type), then a single builder turns a v2 study into a :class:`~core.schemas.Document` whose
sections follow the record's modules, each ``kind="trial-module"``:

``Summary`` (official title + brief summary), ``Description``, ``Conditions and interventions``,
``Design``, ``Eligibility``, ``Outcomes``, ``Results`` (posted results, bounded) and ``Status``.

A section without text is left out. Lists that can be very long (outcome measures, result values,
adverse-event terms ...) are capped; what was left out is counted in ``Document.unsupported``.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from typing import Any

from lxml import etree

from core.errors import ParseError
from core.ids import doc_id_for, normalize_nct
from core.schemas import Document, Identifiers, Reference, Section, SourceType, TrialInfo
from ingest.parsers.base import MONTHS, ParseResult, RecordFailure, Source

__all__ = [
    "looks_like_ctgov_json",
    "looks_like_ctgov_xml",
    "parse_ctgov_json",
    "parse_ctgov_xml",
]

JSON = dict[str, Any]
Counts = dict[str, int]

SECTION_KIND = "trial-module"

# Caps that keep one huge record from exploding the index; overflow is counted in `unsupported`.
MAX_LIST_ITEMS = 60  # protocol outcomes, interventions, arm groups (each)
MAX_OTHER_NAMES = 12  # synonyms listed per intervention
MAX_COUNTRIES = 15
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

_SECURE_XML = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)

# Descriptions that only say there is no description (frequent in the re-shaped v2 extracts).
_PLACEHOLDERS = frozenset(
    {"no detailed description", "not provided", "n/a", "na", "none", "click here to enter text."}
)
_MD_ESCAPE_RE = re.compile(r"\\([\[\]<>*_~^=+|#`{}()!.\-])")
_BULLET_RE = re.compile(r"^(?:[-*•·o]|\d{1,3}[.)]|[A-Za-z][.)]|\(\w{1,4}\))\s")
_ISO_RE = re.compile(r"^\d{4}(?:-\d{2}(?:-\d{2})?)?$")
_LEGACY_DATE_RE = re.compile(r"^([A-Za-z]+)\.?\s+(?:(\d{1,2}),?\s+)?(\d{4})$")
_ENUM_RE = re.compile(r"^[A-Z0-9_]+$")
_HUMAN = {
    "NA": "Not applicable",
    "ACTIVE_NOT_RECRUITING": "Active, not recruiting",
    "UNKNOWN": "Unknown status",
    "NON_RANDOMIZED": "Non-randomized",
    "EARLY_PHASE1": "Early Phase 1",
}
_PHASE_RE = re.compile(r"^(EARLY[\s_]*)?PHASE\s*(\d)$")


class _NoId(Exception):
    """A study without a usable NCT number."""


# --------------------------------------------------------------------------------------------
# Content sniffing
# --------------------------------------------------------------------------------------------


def looks_like_ctgov_json(head: bytes) -> bool:
    """True when the first bytes (a few KB) look like a CT.gov API v2 study, page or list."""
    head = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith((b"{", b"[")):
        return False
    return b'"protocolSection"' in head or re.search(rb'"studies"\s*:\s*\[', head) is not None


def looks_like_ctgov_xml(head: bytes) -> bool:
    """True when the first bytes (a few KB) look like a legacy ``<clinical_study>`` record."""
    return b"<clinical_study" in head


# --------------------------------------------------------------------------------------------
# API v2 JSON
# --------------------------------------------------------------------------------------------


def parse_ctgov_json(source: Source) -> Iterator[ParseResult]:
    """Documents from API v2 JSON: one study, a page ``{"studies": [...]}``, an array or JSON lines.

    Invalid whole-file JSON raises :class:`ParseError`; in JSON lines a bad line, and anywhere a
    study without a valid ``nctId``, becomes a :class:`RecordFailure` and the rest still parse.
    """
    try:
        text = source.data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(source.name, f"not UTF-8 text: {exc}") from exc
    if _is_json_lines(source.name, text):
        yield from _parse_json_lines(source.name, text)
        return
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(
            source.name, f"invalid JSON at line {exc.lineno} col {exc.colno}: {_json_msg(exc)}"
        ) from exc
    except RecursionError as exc:
        raise ParseError(source.name, "invalid JSON: nested too deeply") from exc
    yield from _parse_json_value(source.name, value, prefix="")


def _json_msg(exc: json.JSONDecodeError) -> str:
    """The decoder's message without its dangling 'starting at' (the position is given apart)."""
    return re.sub(r"\s+(?:starting\s+)?at$", "", exc.msg)


def _is_json_lines(name: str, text: str) -> bool:
    """JSON lines: named so, or several lines whose first non-blank line is a whole JSON object."""
    if name.lower().endswith((".jsonl", ".ndjson")):
        return True
    first, sep, rest = text.lstrip().partition("\n")
    if not sep or not rest.strip() or not first.rstrip().endswith("}"):
        return False
    try:
        return isinstance(json.loads(first), dict)
    except json.JSONDecodeError:
        return False


def _parse_json_lines(name: str, text: str) -> Iterator[ParseResult]:
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            reason = f"invalid JSON at col {exc.colno}: {_json_msg(exc)}"
            yield RecordFailure(source=name, record=f"line {n}", reason=reason)
            continue
        except RecursionError:
            yield RecordFailure(source=name, record=f"line {n}", reason="JSON nested too deeply")
            continue
        if isinstance(value, dict) and "protocolSection" not in value and "studies" in value:
            yield from _parse_json_value(name, value, prefix=f"line {n} ")
        else:
            yield _study_result(name, value, f"line {n}")


def _parse_json_value(name: str, value: Any, prefix: str) -> Iterator[ParseResult]:
    studies: list[Any]
    if isinstance(value, list):
        studies = value
    elif isinstance(value, dict) and "protocolSection" in value:
        studies = [value]
    elif isinstance(value, dict) and "studies" in value:
        if not isinstance(value["studies"], list):
            raise ParseError(name, '"studies" is not a list')
        studies = value["studies"]
    else:
        raise ParseError(name, "not a ClinicalTrials.gov API v2 study, page or list of studies")
    for i, study in enumerate(studies, start=1):
        yield _study_result(name, study, f"{prefix}study #{i}")


def _study_result(name: str, study: Any, record: str) -> ParseResult:
    if not isinstance(study, dict):
        reason = f"not a JSON object (got {type(study).__name__})"
        return RecordFailure(source=name, record=record, reason=reason)
    try:
        return _build_document(study, name)
    except _NoId as exc:
        title = _s(_obj(_obj(study, "protocolSection"), "identificationModule"), "briefTitle")
        label = f"{record} ({title})" if title else record
        return RecordFailure(source=name, record=label, reason=str(exc))
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        nct = _s(_obj(_obj(study, "protocolSection"), "identificationModule"), "nctId")
        label = f"{record} ({nct})" if nct else record
        return RecordFailure(source=name, record=label, reason=f"{type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------------------------
# Safe accessors over JSON values
# --------------------------------------------------------------------------------------------


def _obj(d: Any, key: str) -> JSON:
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, dict) else {}


def _objs(d: Any, key: str) -> list[JSON]:
    v = d.get(key) if isinstance(d, dict) else None
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


def _s(d: Any, key: str) -> str | None:
    """A scalar field as stripped text; None when missing, empty or not a scalar."""
    v = d.get(key) if isinstance(d, dict) else None
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, str):
        v = v.strip()
        return v or None
    if isinstance(v, int | float):
        return str(v)
    return None


def _strs(d: Any, key: str) -> list[str]:
    v = d.get(key) if isinstance(d, dict) else None
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list):
        return []
    return _dedupe(x.strip() for x in v if isinstance(x, str) and x.strip())


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --------------------------------------------------------------------------------------------
# Text helpers
# --------------------------------------------------------------------------------------------


def _clean(text: str | None) -> str:
    """Normalise line ends, drop v2 markdown escapes and trailing spaces, squeeze blank lines."""
    if not text:
        return ""
    if "\n" not in text and "\r" not in text and "\\" not in text:
        return text.strip()
    t = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\\" in t:
        t = _MD_ESCAPE_RE.sub(r"\1", t)
    lines = [ln.rstrip() for ln in t.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _real_text(text: str | None) -> str:
    t = _clean(text)
    return "" if t.lower() in _PLACEHOLDERS else t


def _clip(text: str, limit: int) -> str:
    t = " ".join(text.split())
    return t if len(t) <= limit else t[: limit - 1].rstrip() + "…"


def _human(value: str | None) -> str:
    """'ACTIVE_NOT_RECRUITING' -> 'Active, not recruiting'; free text is returned unchanged."""
    if not value:
        return ""
    if not _ENUM_RE.match(value):
        return value
    if value in _HUMAN:
        return _HUMAN[value]
    m = _PHASE_RE.match(value)
    if m:
        return ("Early Phase " if m.group(1) else "Phase ") + m.group(2)
    return value.replace("_", " ").capitalize()


def _lower_human(value: str | None) -> str:
    return _human(value).lower()


def _line(label: str, value: str | None) -> str | None:
    return f"{label}: {value}" if value else None


def _join_lines(lines: Iterable[str | None]) -> str:
    return "\n".join(x for x in lines if x)


def _join_blocks(blocks: Iterable[str | None]) -> str:
    return "\n\n".join(b for b in blocks if b)


def _capped(items: list[Any], limit: int, counts: Counts, key: str) -> list[Any]:
    if len(items) > limit:
        counts[key] = counts.get(key, 0) + len(items) - limit
        return items[:limit]
    return items


# --------------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------------


def _iso(raw: str | None) -> str | None:
    """'2020-03', '2020-03-15' as given; legacy 'March 2020' / 'March 15, 2020' converted."""
    if not raw:
        return None
    s = raw.strip()
    if _ISO_RE.match(s):
        return s
    m = _LEGACY_DATE_RE.match(s)
    if not m or m.group(1).lower() not in MONTHS:
        return None
    month = MONTHS[m.group(1).lower()]
    out = f"{m.group(3)}-{month:02d}"
    return f"{out}-{int(m.group(2)):02d}" if m.group(2) else out


def _to_date(iso: str | None) -> date | None:
    if not iso or not _ISO_RE.match(iso):
        return None
    parts = [int(p) for p in iso.split("-")]
    try:
        return date(parts[0], parts[1] if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else 1)
    except ValueError:
        return None


def _date_struct(status: JSON, key: str) -> tuple[str | None, str | None]:
    """(ISO date, type) of a v2 ``...DateStruct``; a plain string is accepted too."""
    v = status.get(key)
    if isinstance(v, dict):
        raw = _s(v, "date")
        return (_iso(raw) or raw), _s(v, "type")
    if isinstance(v, str) and v.strip():
        return (_iso(v) or v.strip()), None
    return None, None


def _date_line(label: str, status: JSON, key: str) -> str | None:
    d, kind = _date_struct(status, key)
    if not d:
        return None
    return f"{label}: {d} ({_lower_human(kind)})" if kind else f"{label}: {d}"


# --------------------------------------------------------------------------------------------
# Document from a v2 study
# --------------------------------------------------------------------------------------------


def _build_document(study: JSON, source_name: str) -> Document:
    proto = _obj(study, "protocolSection")
    ident = _obj(proto, "identificationModule")
    raw_id = _s(ident, "nctId")
    if not raw_id:
        raise _NoId("no nctId")
    nct = normalize_nct(raw_id)
    if not nct:
        raise _NoId(f"no nctId: malformed {raw_id!r}")

    status = _obj(proto, "statusModule")
    sponsor_mod = _obj(proto, "sponsorCollaboratorsModule")
    conds = _obj(proto, "conditionsModule")
    design = _obj(proto, "designModule")
    arms = _obj(proto, "armsInterventionsModule")
    results = _obj(study, "resultsSection")
    counts: Counts = {}

    brief_title = " ".join(_clean(_s(ident, "briefTitle")).split())
    official_title = " ".join(_clean(_s(ident, "officialTitle")).split())
    title = brief_title or official_title or nct

    start, _ = _date_struct(status, "startDateStruct")
    completion, _ = _date_struct(status, "completionDateStruct")
    first_post, _ = _date_struct(status, "studyFirstPostDateStruct")
    start_iso = start if start and _ISO_RE.match(start) else None
    completion_iso = completion if completion and _ISO_RE.match(completion) else None
    pub_date = _to_date(first_post)
    start_day = _to_date(start_iso)
    year = start_day.year if start_day else (pub_date.year if pub_date else None)

    has_results = study.get("hasResults") is True or bool(results)
    trial = TrialInfo(
        nct_id=nct,
        overall_status=_s(status, "overallStatus"),
        phases=_strs(design, "phases"),
        study_type=_s(design, "studyType"),
        conditions=_strs(conds, "conditions"),
        interventions=_dedupe(
            name for i in _objs(arms, "interventions") if (name := _clean(_s(i, "name")))
        ),
        sponsor=_s(_obj(sponsor_mod, "leadSponsor"), "name"),
        start_date=start_iso,
        completion_date=completion_iso,
        has_results=has_results,
    )

    texts: list[tuple[str, str]] = [
        ("Summary", _summary_text(ident, _obj(proto, "descriptionModule"), official_title, title)),
        ("Description", _real_text(_s(_obj(proto, "descriptionModule"), "detailedDescription"))),
        ("Conditions and interventions", _conditions_text(proto, study, counts)),
        ("Design", _design_text(design)),
        ("Eligibility", _eligibility_text(_obj(proto, "eligibilityModule"))),
        ("Outcomes", _outcomes_text(_obj(proto, "outcomesModule"), counts)),
        ("Results", _results_text(results, counts) if results else ""),
        ("Status", _status_text(proto, counts)),
    ]
    sections = [Section(path=(name,), text=t, kind=SECTION_KIND) for name, t in texts if t]

    return Document(
        doc_id=doc_id_for(Identifiers(nct_id=nct)),
        source_type=SourceType.TRIAL,
        title=title,
        identifiers=Identifiers(nct_id=nct),
        sections=sections,
        pub_date=pub_date,
        year=year,
        keywords=_strs(conds, "keywords"),
        references=_references(_obj(proto, "referencesModule")),
        trial=trial,
        source_path=source_name,
        unsupported=counts,
    )


def _summary_text(ident: JSON, desc: JSON, official: str, title: str) -> str:
    head = _join_lines(
        [
            _line("Official title", official) if official and official != title else None,
            _line("Acronym", _s(ident, "acronym")),
        ]
    )
    return _join_blocks([head, _real_text(_s(desc, "briefSummary"))])


def _conditions_text(proto: JSON, study: JSON, counts: Counts) -> str:
    conds = _obj(proto, "conditionsModule")
    arms = _obj(proto, "armsInterventionsModule")
    derived = _obj(study, "derivedSection")
    mesh_c = [
        t for m in _objs(_obj(derived, "conditionBrowseModule"), "meshes") if (t := _s(m, "term"))
    ]
    mesh_i = [
        t
        for m in _objs(_obj(derived, "interventionBrowseModule"), "meshes")
        if (t := _s(m, "term"))
    ]
    head = _join_lines(
        [
            _line("Conditions", "; ".join(_strs(conds, "conditions"))),
            _line("Keywords", "; ".join(_strs(conds, "keywords"))),
            _line("Condition MeSH terms", "; ".join(_dedupe(mesh_c))),
            _line("Intervention MeSH terms", "; ".join(_dedupe(mesh_i))),
        ]
    )

    rows = []
    for i in _capped(
        _objs(arms, "interventions"), MAX_LIST_ITEMS, counts, "protocol.interventions"
    ):
        name = _clean(_s(i, "name"))
        if not name:
            continue
        kind = _human(_s(i, "type"))
        row = f"- {kind}: {name}" if kind else f"- {name}"
        others = _capped(_strs(i, "otherNames"), MAX_OTHER_NAMES, counts, "protocol.other_names")
        if others:
            row += f" (other names: {', '.join(others)})"
        if d := _clean(_s(i, "description")):
            row += f". {d}"
        rows.append(row)
    interventions = "Interventions:\n" + "\n".join(rows) if rows else ""

    groups = []
    for g in _capped(_objs(arms, "armGroups"), MAX_LIST_ITEMS, counts, "protocol.arm_groups"):
        label = _clean(_s(g, "label"))
        if not label:
            continue
        kind = _lower_human(_s(g, "type"))
        row = f"- {label} ({kind})" if kind else f"- {label}"
        if d := _clean(_s(g, "description")):
            row += f": {d}"
        if names := _strs(g, "interventionNames"):
            row += f"\n  Interventions: {'; '.join(names)}"
        groups.append(row)
    arm_text = "Arm groups:\n" + "\n".join(groups) if groups else ""
    return _join_blocks([head, interventions, arm_text])


def _design_text(design: JSON) -> str:
    info = _obj(design, "designInfo")
    masking = _obj(info, "maskingInfo")
    enrol = _obj(design, "enrollmentInfo")
    bio = _obj(design, "bioSpec")

    study_type = _human(_s(design, "studyType"))
    if study_type and design.get("patientRegistry") is True:
        study_type += " (patient registry)"
    mask = _human(_s(masking, "masking"))
    who = [_lower_human(w) for w in _strs(masking, "whoMasked")]
    if mask and who:
        mask += f" ({', '.join(who)})"
    enrolment = _s(enrol, "count")
    if enrolment:
        enrolment += " participants"
        if kind := _s(enrol, "type"):
            enrolment += f" ({_lower_human(kind)})"
    return _join_lines(
        [
            _line("Study type", study_type),
            _line("Phase", ", ".join(_human(p) for p in _strs(design, "phases"))),
            _line("Allocation", _human(_s(info, "allocation"))),
            _line("Intervention model", _human(_s(info, "interventionModel"))),
            _line("Model description", _clean(_s(info, "interventionModelDescription"))),
            _line("Primary purpose", _human(_s(info, "primaryPurpose"))),
            _line("Observational model", _human(_s(info, "observationalModel"))),
            _line("Time perspective", _human(_s(info, "timePerspective"))),
            _line("Masking", mask),
            _line("Masking description", _clean(_s(masking, "description"))),
            _line("Enrollment", enrolment),
            _line("Target duration", _s(design, "targetDuration")),
            _line("Biospecimen retention", _human(_s(bio, "retention"))),
            _line("Biospecimen description", _clean(_s(bio, "description"))),
        ]
    )


def _eligibility_text(elig: JSON) -> str:
    min_age, max_age = _s(elig, "minimumAge"), _s(elig, "maximumAge")
    healthy = elig.get("healthyVolunteers")
    head = _join_lines(
        [
            _line("Sex", _human(_s(elig, "sex"))),
            _line("Gender description", _clean(_s(elig, "genderDescription"))),
            _line("Minimum age", min_age),
            _line("Maximum age", max_age),
            _line("Age groups", ", ".join(_human(a) for a in _strs(elig, "stdAges"))),
            _line("Accepts healthy volunteers", _s(elig, "healthyVolunteers"))
            if isinstance(healthy, bool)
            else None,
            _line("Sampling method", _human(_s(elig, "samplingMethod"))),
        ]
    )
    population = _clean(_s(elig, "studyPopulation"))
    return _join_blocks(
        [
            head,
            f"Study population: {population}" if population else None,
            _clean(_s(elig, "eligibilityCriteria")),
        ]
    )


def _outcomes_text(outcomes: JSON, counts: Counts) -> str:
    blocks = []
    for key, label in (
        ("primaryOutcomes", "Primary outcome"),
        ("secondaryOutcomes", "Secondary outcome"),
        ("otherOutcomes", "Other outcome"),
    ):
        for o in _capped(_objs(outcomes, key), MAX_LIST_ITEMS, counts, "protocol.outcomes"):
            measure = _clean(_s(o, "measure"))
            if not measure:
                continue
            blocks.append(
                _join_lines(
                    [
                        f"{label}: {measure}",
                        _line("Time frame", _clean(_s(o, "timeFrame"))),
                        _clean(_s(o, "description")),
                    ]
                )
            )
    return _join_blocks(blocks)


def _status_text(proto: JSON, counts: Counts) -> str:
    status = _obj(proto, "statusModule")
    sponsor_mod = _obj(proto, "sponsorCollaboratorsModule")
    contacts = _obj(proto, "contactsLocationsModule")
    collaborators = _dedupe(n for c in _objs(sponsor_mod, "collaborators") if (n := _s(c, "name")))
    officials = []
    for o in _objs(contacts, "overallOfficials"):
        parts = [p for p in (_s(o, "name"), _s(o, "affiliation")) if p]
        if parts:
            role = _lower_human(_s(o, "role"))
            officials.append(", ".join(parts) + (f" ({role})" if role else ""))
    locations = _objs(contacts, "locations")
    countries = _dedupe(c for loc in locations if (c := _s(loc, "country")))
    countries = countries or _strs(contacts, "countries")
    where = None
    if locations:
        counts["locations"] = len(locations)
        where = f"{len(locations)} site{'s' if len(locations) != 1 else ''}"
        if countries:
            n_countries = len(countries)
            more = ", ..." if n_countries > MAX_COUNTRIES else ""
            shown = ", ".join(countries[:MAX_COUNTRIES]) + more
            where += f" in {n_countries} countr{'ies' if n_countries != 1 else 'y'} ({shown})"
    elif countries:
        where = "; ".join(countries[:MAX_COUNTRIES])
    last_known = _s(status, "lastKnownStatus")
    return _join_lines(
        [
            _line("Overall status", _human(_s(status, "overallStatus"))),
            _line("Last known status", _human(last_known)) if last_known else None,
            _line("Why stopped", _clean(_s(status, "whyStopped"))),
            _date_line("Start date", status, "startDateStruct"),
            _date_line("Primary completion date", status, "primaryCompletionDateStruct"),
            _date_line("Completion date", status, "completionDateStruct"),
            _date_line("First posted", status, "studyFirstPostDateStruct"),
            _date_line("Results first posted", status, "resultsFirstPostDateStruct"),
            _date_line("Last update posted", status, "lastUpdatePostDateStruct"),
            _line("Lead sponsor", _s(_obj(sponsor_mod, "leadSponsor"), "name")),
            _line("Collaborators", "; ".join(collaborators)),
            _line("Overall official" + ("s" if len(officials) > 1 else ""), "; ".join(officials)),
            _line("Locations", where),
        ]
    )


def _references(refs: JSON) -> list[Reference]:
    out = []
    for i, r in enumerate(_objs(refs, "references"), start=1):
        citation = _clean(_s(r, "citation"))
        if not citation:
            continue
        pmid = _s(r, "pmid")
        pmid = pmid if pmid and pmid.isdigit() else None
        out.append(Reference(ref_id=f"ref{i}", text=citation, pmid=pmid))
    return out


# --------------------------------------------------------------------------------------------
# Results (bounded)
# --------------------------------------------------------------------------------------------


def _group_titles(groups: list[JSON]) -> dict[str, str]:
    return {gid: (_s(g, "title") or gid) for g in groups if (gid := _s(g, "id"))}


def _values(pairs: list[tuple[str | None, str]], titles: dict[str, str], counts: Counts) -> str:
    """'Arm A 12; Arm B 15' from (groupId, value) pairs, at most MAX_GROUP_VALUES of them."""
    shown = _capped(pairs, MAX_GROUP_VALUES, counts, "results.group_values")
    return "; ".join(f"{titles.get(g or '', g or '?')} {v}" for g, v in shown)


def _measurement(m: JSON) -> str:
    value = _s(m, "value") or "NA"
    if spread := _s(m, "spread"):
        value += f" ({spread})"
    lo, hi = _s(m, "lowerLimit"), _s(m, "upperLimit")
    if lo or hi:
        value += f" [{lo or 'NA'} to {hi or 'NA'}]"
    if comment := _s(m, "comment"):
        value += f" ({_clip(comment, 120)})"
    return value


def _measure_rows(measure: JSON, titles: dict[str, str], counts: Counts) -> list[str]:
    rows: list[tuple[str, list[JSON]]] = []
    for cls in _objs(measure, "classes"):
        ctitle = _s(cls, "title")
        for cat in _objs(cls, "categories"):
            label = " / ".join(t for t in (ctitle, _s(cat, "title")) if t)
            rows.append((label, _objs(cat, "measurements")))
    out = []
    for label, ms in _capped(rows, MAX_CATEGORY_ROWS, counts, "results.category_rows"):
        vals = _values([(_s(m, "groupId"), _measurement(m)) for m in ms], titles, counts)
        if vals:
            out.append(f"  {label}: {vals}" if label else f"  {vals}")
    return out


def _measure_head(measure: JSON) -> str:
    detail = [
        d
        for d in (
            _lower_human(_s(measure, "paramType")),
            _lower_human(_s(measure, "dispersionType")),
            _s(measure, "unitOfMeasure"),
        )
        if d
    ]
    return f" ({'; '.join(detail)})" if detail else ""


def _denoms(module: JSON, titles: dict[str, str], counts: Counts) -> str | None:
    for d in _objs(module, "denoms"):
        pairs = [(_s(c, "groupId"), v) for c in _objs(d, "counts") if (v := _s(c, "value"))]
        if pairs:
            units = (_s(d, "units") or "participants").lower()
            return f"Analysed ({units}): {_values(pairs, titles, counts)}"
    return None


def _groups_block(groups: list[JSON], counts: Counts, seen: set[str]) -> str:
    """'Groups:' with each group's description, skipping groups already described above."""
    rows = []
    for g in _capped(groups, MAX_GROUP_VALUES, counts, "results.groups"):
        title = _s(g, "title")
        desc = _clip(_clean(_s(g, "description")), MAX_GROUP_DESCRIPTION)
        if not title or f"{title}\n{desc}" in seen:
            continue
        seen.add(f"{title}\n{desc}")
        rows.append(f"- {title}: {desc}" if desc else f"- {title}")
    return "Groups:\n" + "\n".join(rows) if rows else ""


def _titled(title: str, blocks: list[str | None]) -> str:
    body = _join_blocks(blocks)
    return f"{title}\n\n{body}" if body else ""


def _flow_text(flow: JSON, counts: Counts, seen: set[str]) -> str:
    groups = _objs(flow, "groups")
    titles = _group_titles(groups)
    periods = []
    for p in _capped(_objs(flow, "periods"), MAX_FLOW_PERIODS, counts, "results.flow_periods"):
        rows = []
        for key, sub in (("milestones", "achievements"), ("dropWithdraws", "reasons")):
            for m in _capped(_objs(p, key), MAX_FLOW_ROWS, counts, "results.flow_rows"):
                pairs = [
                    (_s(a, "groupId"), n) for a in _objs(m, sub) if (n := _s(a, "numSubjects"))
                ]
                label = _s(m, "type") or "?"
                if key == "dropWithdraws":
                    label = f"Withdrawn ({label.lower()})"
                if pairs:
                    rows.append(f"  {label}: {_values(pairs, titles, counts)}")
        if rows:
            periods.append(f"Period: {_s(p, 'title') or 'Overall study'}\n" + "\n".join(rows))
    return _titled(
        "Participant flow",
        [
            _line("Recruitment details", _clean(_s(flow, "recruitmentDetails"))),
            _line("Pre-assignment details", _clean(_s(flow, "preAssignmentDetails"))),
            _groups_block(groups, counts, seen),
            *periods,
        ],
    )


def _baseline_text(base: JSON, counts: Counts, seen: set[str]) -> str:
    groups = _objs(base, "groups")
    titles = _group_titles(groups)
    measures = []
    for m in _capped(
        _objs(base, "measures"), MAX_BASELINE_MEASURES, counts, "results.baseline_measures"
    ):
        title = _s(m, "title")
        rows = _measure_rows(m, titles, counts)
        if title and rows:
            measures.append(f"{title}{_measure_head(m)}:\n" + "\n".join(rows))
    return _titled(
        "Baseline characteristics",
        [
            _line("Population", _clean(_s(base, "populationDescription"))),
            _groups_block(groups, counts, seen),
            _denoms(base, titles, counts),
            *measures,
        ],
    )


def _analysis_text(a: JSON, titles: dict[str, str]) -> str:
    groups = " vs ".join(titles.get(g, g) for g in _strs(a, "groupIds"))
    parts = []
    if p := _s(a, "pValue"):
        parts.append(f"p = {p}" if p[0].isdigit() else f"p {p}")
    if method := _s(a, "statisticalMethod"):
        parts.append(method)
    if value := _s(a, "paramValue"):
        est = f"{_s(a, 'paramType') or 'estimate'} {value}"
        lo, hi = _s(a, "ciLowerLimit"), _s(a, "ciUpperLimit")
        if lo or hi:
            pct = _s(a, "ciPctValue")
            est += f" [{pct + '% ' if pct else ''}CI {lo or 'NA'} to {hi or 'NA'}]"
        parts.append(est)
    if desc := _s(a, "groupDescription"):
        parts.append(_clip(desc, 200))
    if not parts:
        return ""
    return (
        f"  Analysis ({groups}): " + "; ".join(parts)
        if groups
        else "  Analysis: " + "; ".join(parts)
    )


def _outcome_measures_text(module: JSON, counts: Counts, seen: set[str]) -> str:
    blocks: list[str | None] = []
    for o in _capped(
        _objs(module, "outcomeMeasures"), MAX_OUTCOME_MEASURES, counts, "results.outcome_measures"
    ):
        title = _clean(_s(o, "title"))
        if not title:
            continue
        groups = _objs(o, "groups")
        titles = _group_titles(groups)
        kind = _human(_s(o, "type"))
        analyses = _capped(_objs(o, "analyses"), MAX_ANALYSES, counts, "results.analyses")
        rows = _measure_rows(o, titles, counts)
        blocks.append(
            _join_lines(
                [
                    f"{kind + ' outcome' if kind else 'Outcome'}: {title}{_measure_head(o)}",
                    _line("Time frame", _clean(_s(o, "timeFrame"))),
                    _line("Description", _clean(_s(o, "description"))),
                    _line("Population", _clean(_s(o, "populationDescription"))),
                    _groups_block(groups, counts, seen),
                    _denoms(o, titles, counts),
                    "Values:\n" + "\n".join(rows) if rows else None,
                    *(_analysis_text(a, titles) for a in analyses),
                ]
            )
        )
    return _titled("Outcome measures", blocks)


def _int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return 0


def _event_terms(events: list[JSON], titles: dict[str, str], label: str, counts: Counts) -> str:
    """The most frequent adverse-event terms with participants affected / at risk per group."""
    named = [e for e in events if _s(e, "term")]
    named.sort(key=lambda e: -sum(_int(st.get("numAffected")) for st in _objs(e, "stats")))
    rows = []
    for e in _capped(named, MAX_AE_TERMS, counts, "results.adverse_event_terms"):
        organ = _s(e, "organSystem")
        pairs = []
        for st in _objs(e, "stats"):
            affected, at_risk = _s(st, "numAffected"), _s(st, "numAtRisk")
            if affected is not None:
                pairs.append((_s(st, "groupId"), f"{affected}/{at_risk}" if at_risk else affected))
        values = _values(pairs, titles, counts)
        rows.append(f"- {_s(e, 'term')}{' (' + organ + ')' if organ else ''}: {values}")
    return f"{label} (most frequent; affected/at risk):\n" + "\n".join(rows) if rows else ""


def _adverse_text(ae: JSON, counts: Counts, seen: set[str]) -> str:
    groups = _objs(ae, "eventGroups")
    titles = _group_titles(groups)
    rows = []
    for g in _capped(groups, MAX_GROUP_VALUES, counts, "results.groups"):
        title = _s(g, "title")
        if not title:
            continue
        parts = []
        for key, label in (("deaths", "deaths"), ("serious", "serious"), ("other", "other")):
            affected, at_risk = _s(g, f"{key}NumAffected"), _s(g, f"{key}NumAtRisk")
            if affected is not None:
                parts.append(f"{label} {affected}{'/' + at_risk if at_risk else ''}")
        rows.append(f"- {title}: " + ", ".join(parts) if parts else f"- {title}")
    return _titled(
        "Adverse events",
        [
            _line("Time frame", _clean(_s(ae, "timeFrame"))),
            _line("Description", _clean(_s(ae, "description"))),
            _line("Frequency threshold for other events", _s(ae, "frequencyThreshold")),
            "Participants affected / at risk:\n" + "\n".join(rows) if rows else None,
            _event_terms(_objs(ae, "seriousEvents"), titles, "Serious adverse events", counts),
            _event_terms(_objs(ae, "otherEvents"), titles, "Other adverse events", counts),
        ],
    )


def _results_text(results: JSON, counts: Counts) -> str:
    """Posted results as bounded text; overflow is counted in ``counts``."""
    seen: set[str] = set()
    parts: list[tuple[str, Callable[[JSON, Counts, set[str]], str]]] = [
        ("participantFlowModule", _flow_text),
        ("baselineCharacteristicsModule", _baseline_text),
        ("outcomeMeasuresModule", _outcome_measures_text),
        ("adverseEventsModule", _adverse_text),
    ]
    blocks = [fn(_obj(results, key), counts, seen) for key, fn in parts if _obj(results, key)]
    limits = _clean(
        _s(_obj(_obj(results, "moreInfoModule"), "limitationsAndCaveats"), "description")
    )
    if limits:
        blocks.append(f"Limitations and caveats: {limits}")
    text = _join_blocks(blocks)
    if len(text) > MAX_RESULTS_CHARS:
        cut = text.rfind("\n", 0, MAX_RESULTS_CHARS)
        cut = cut if cut > 0 else MAX_RESULTS_CHARS
        counts["results.chars"] = len(text) - cut
        text = text[:cut].rstrip()
    return text


# --------------------------------------------------------------------------------------------
# Legacy XML
# --------------------------------------------------------------------------------------------


def parse_ctgov_xml(source: Source) -> Iterator[ParseResult]:
    """One Document from a legacy ``<clinical_study>`` record (no network, no entities)."""
    try:
        root = etree.fromstring(source.data, parser=_SECURE_XML)
    except etree.XMLSyntaxError as exc:
        raise ParseError(source.name, f"malformed XML: {exc}") from exc
    if root is None or root.tag != "clinical_study":
        tag = getattr(root, "tag", None)
        raise ParseError(source.name, f"not a <clinical_study> record (root <{tag}>)")
    study = _legacy_to_v2(root)
    try:
        yield _build_document(study, source.name)
    except _NoId as exc:
        reason = "no nct_id" if str(exc) == "no nctId" else str(exc).replace("nctId", "nct_id")
        raise ParseError(source.name, reason) from exc


def _x(el: Any, path: str) -> str | None:
    """Text of the first element at ``path`` (whitespace-squeezed lines kept), or None."""
    found = el.find(path)
    if found is None:
        return None
    text = _clean("".join(found.itertext()))
    return text or None


def _xs(el: Any, path: str) -> list[str]:
    return _dedupe(t for e in el.findall(path) if (t := _clean("".join(e.itertext()))))


def _block(el: Any, path: str) -> str | None:
    """A legacy ``<textblock>``: dedented, hard-wrapped lines re-joined, bullets kept.

    The dump wraps lines at a fixed width, so a line continues the previous one when the
    previous line was too long for the current line's first word to have fitted on it.
    """
    found = el.find(path)
    if found is None:
        return None
    raw = "".join(found.itertext()).replace("\r\n", "\n").replace("\r", "\n")
    raw_lines = textwrap.dedent(raw.expandtabs(4)).split("\n")
    width = max((len(ln.rstrip()) for ln in raw_lines), default=0)
    wrapped = width >= 60
    paragraphs: list[str] = []
    lines: list[str] = []
    prev_len = 0
    for line in raw_lines:
        stripped = line.strip()
        if not stripped:
            if lines:
                paragraphs.append("\n".join(lines))
                lines = []
            continue
        indent = line[: len(line) - len(line.lstrip())]
        text = re.sub(r"^([-*•·])\s+", r"\1 ", re.sub(r"\s{2,}", " ", stripped))
        first_word = stripped.split(None, 1)[0]
        continues = (
            wrapped
            and lines
            and prev_len + 1 + len(first_word) > width
            and not _BULLET_RE.match(text)
        )
        if continues:
            lines[-1] += " " + text
        else:
            lines.append(indent + text)
        prev_len = len(line.rstrip())
    if lines:
        paragraphs.append("\n".join(lines))
    # Consecutive list items stay one list instead of being spread over paragraphs.
    out = ""
    for para in paragraphs:
        both_items = _BULLET_RE.match(para.lstrip()) and _BULLET_RE.match(
            out.rsplit("\n", 1)[-1].lstrip()
        )
        out += ("\n" if both_items else "\n\n") + para if out else para
    return out or None


def _enum(raw: str | None) -> str | None:
    """'Active, not recruiting' -> 'ACTIVE_NOT_RECRUITING'."""
    if not raw:
        return None
    value = re.sub(r"[^A-Za-z0-9]+", "_", raw).strip("_").upper()
    return value or None


def _legacy_status(raw: str | None) -> str | None:
    value = _enum(raw)
    return "UNKNOWN" if value == "UNKNOWN_STATUS" else value


def _legacy_phases(raw: str | None) -> list[str]:
    """'Phase 1/Phase 2' -> ['PHASE1', 'PHASE2']; 'N/A' -> ['NA']; 'Early Phase 1' -> [...]."""
    if not raw:
        return []
    s = raw.strip().upper()
    if s in ("N/A", "NA", "NOT APPLICABLE"):
        return ["NA"]
    phases = []
    for part in s.split("/"):
        part = part.strip()
        m = _PHASE_RE.match(part)
        if m:
            phases.append(("EARLY_" if m.group(1) else "") + "PHASE" + m.group(2))
        elif part in ("N/A", "NA"):
            phases.append("NA")
        elif value := _enum(part):
            phases.append(value)
    return _dedupe(phases)


def _legacy_date(el: Any, tag: str) -> JSON | None:
    found = el.find(tag)
    if found is None or not (found.text or "").strip():
        return None
    raw = found.text.strip()
    kind = {"Actual": "ACTUAL", "Anticipated": "ESTIMATED", "Estimate": "ESTIMATED"}.get(
        found.get("type") or ""
    )
    struct: JSON = {"date": _iso(raw) or raw}
    if kind:
        struct["type"] = kind
    return struct


def _drop_empty(d: JSON) -> JSON:
    return {k: v for k, v in d.items() if v not in (None, "", [], {})}


def _legacy_to_v2(root: Any) -> JSON:
    """Convert a legacy ``<clinical_study>`` to the API v2 layout used by the builder.

    Status, phases and study type become v2 enum strings; descriptive values (allocation,
    masking, intervention type ...) stay as the legacy text, which the builder shows as is.
    """
    raw_type = _x(root, "study_type") or ""
    registry = "[patient registry]" in raw_type.lower()
    study_type = _enum(re.sub(r"\[.*?\]", "", raw_type))
    design_el = root.find("study_design_info")
    design_info: JSON = {}
    if design_el is not None:
        masking = _x(design_el, "masking")
        design_info = _drop_empty(
            {
                "allocation": _x(design_el, "allocation"),
                "interventionModel": _x(design_el, "intervention_model"),
                "interventionModelDescription": _x(design_el, "intervention_model_description"),
                "primaryPurpose": _x(design_el, "primary_purpose"),
                "observationalModel": _x(design_el, "observational_model"),
                "timePerspective": _x(design_el, "time_perspective"),
                "maskingInfo": _drop_empty(
                    {"masking": masking, "description": _x(design_el, "masking_description")}
                ),
            }
        )
    enrol = root.find("enrollment")
    enrollment: JSON = {}
    if enrol is not None and (enrol.text or "").strip():
        enrollment = _drop_empty({"count": enrol.text.strip(), "type": _enum(enrol.get("type"))})
    bio = _drop_empty(
        {
            "retention": _x(root, "biospec_retention"),
            "description": _block(root, "biospec_descr/textblock"),
        }
    )

    healthy_raw = (_x(root, "eligibility/healthy_volunteers") or "").lower()
    healthy = (
        True
        if healthy_raw.startswith(("yes", "accepts"))
        else False
        if healthy_raw.startswith("no")
        else None
    )

    def age(tag: str) -> str | None:
        value = _x(root, tag)
        return None if not value or value.upper() in ("N/A", "NA") else value

    def outcomes(tag: str) -> list[JSON]:
        return [
            _drop_empty(
                {
                    "measure": _x(o, "measure"),
                    "timeFrame": _x(o, "time_frame"),
                    "description": _x(o, "description"),
                }
            )
            for o in root.findall(tag)
        ]

    references = [
        _drop_empty({"pmid": _x(r, "PMID"), "citation": _x(r, "citation"), "type": kind})
        for tag, kind in (("reference", "BACKGROUND"), ("results_reference", "RESULT"))
        for r in root.findall(tag)
    ]
    officials = [
        _drop_empty(
            {"name": _x(o, "last_name"), "affiliation": _x(o, "affiliation"), "role": _x(o, "role")}
        )
        for o in root.findall("overall_official")
    ]
    locations = [
        _drop_empty({"country": _x(loc, "facility/address/country")})
        for loc in root.findall("location")
    ]

    protocol: JSON = {
        "identificationModule": _drop_empty(
            {
                "nctId": _x(root, "id_info/nct_id"),
                "briefTitle": _x(root, "brief_title"),
                "officialTitle": _x(root, "official_title"),
                "acronym": _x(root, "acronym"),
            }
        ),
        "statusModule": _drop_empty(
            {
                "overallStatus": _legacy_status(_x(root, "overall_status")),
                "lastKnownStatus": _legacy_status(_x(root, "last_known_status")),
                "whyStopped": _x(root, "why_stopped"),
                "startDateStruct": _legacy_date(root, "start_date"),
                "primaryCompletionDateStruct": _legacy_date(root, "primary_completion_date"),
                "completionDateStruct": _legacy_date(root, "completion_date"),
                "studyFirstPostDateStruct": _legacy_date(root, "study_first_posted"),
                "resultsFirstPostDateStruct": _legacy_date(root, "results_first_posted"),
                "lastUpdatePostDateStruct": _legacy_date(root, "last_update_posted"),
            }
        ),
        "sponsorCollaboratorsModule": _drop_empty(
            {
                "leadSponsor": _drop_empty({"name": _x(root, "sponsors/lead_sponsor/agency")}),
                "collaborators": [{"name": n} for n in _xs(root, "sponsors/collaborator/agency")],
            }
        ),
        "descriptionModule": _drop_empty(
            {
                "briefSummary": _block(root, "brief_summary/textblock"),
                "detailedDescription": _block(root, "detailed_description/textblock"),
            }
        ),
        "conditionsModule": _drop_empty(
            {"conditions": _xs(root, "condition"), "keywords": _xs(root, "keyword")}
        ),
        "designModule": _drop_empty(
            {
                "studyType": study_type,
                "patientRegistry": True if registry else None,
                "phases": _legacy_phases(_x(root, "phase")),
                "designInfo": design_info,
                "enrollmentInfo": enrollment,
                "targetDuration": _x(root, "target_duration"),
                "bioSpec": bio,
            }
        ),
        "armsInterventionsModule": _drop_empty(
            {
                "armGroups": [
                    _drop_empty(
                        {
                            "label": _x(g, "arm_group_label"),
                            "type": _x(g, "arm_group_type"),
                            "description": _x(g, "description"),
                        }
                    )
                    for g in root.findall("arm_group")
                ],
                "interventions": [
                    _drop_empty(
                        {
                            "type": _x(i, "intervention_type"),
                            "name": _x(i, "intervention_name"),
                            "description": _x(i, "description"),
                            "otherNames": _xs(i, "other_name"),
                        }
                    )
                    for i in root.findall("intervention")
                ],
            }
        ),
        "outcomesModule": _drop_empty(
            {
                "primaryOutcomes": outcomes("primary_outcome"),
                "secondaryOutcomes": outcomes("secondary_outcome"),
                "otherOutcomes": outcomes("other_outcome"),
            }
        ),
        "eligibilityModule": _drop_empty(
            {
                "eligibilityCriteria": _block(root, "eligibility/criteria/textblock"),
                "studyPopulation": _block(root, "eligibility/study_pop/textblock"),
                "samplingMethod": _x(root, "eligibility/sampling_method"),
                "sex": _x(root, "eligibility/gender"),
                "genderDescription": _x(root, "eligibility/gender_description"),
                "minimumAge": age("eligibility/minimum_age"),
                "maximumAge": age("eligibility/maximum_age"),
                "healthyVolunteers": healthy,
            }
        ),
        "contactsLocationsModule": _drop_empty(
            {
                "overallOfficials": officials,
                "locations": locations,
                "countries": _xs(root, "location_countries/country"),
            }
        ),
        "referencesModule": _drop_empty({"references": references}),
    }
    study: JSON = {"protocolSection": protocol}
    derived = _drop_empty(
        {
            "conditionBrowseModule": _drop_empty(
                {"meshes": [{"term": t} for t in _xs(root, "condition_browse/mesh_term")]}
            ),
            "interventionBrowseModule": _drop_empty(
                {"meshes": [{"term": t} for t in _xs(root, "intervention_browse/mesh_term")]}
            ),
        }
    )
    if derived:
        study["derivedSection"] = derived
    results_el = root.find("clinical_results")
    study["hasResults"] = results_el is not None
    if results_el is not None:
        study["resultsSection"] = _legacy_results(results_el)
    return study


def _legacy_groups(el: Any) -> list[JSON]:
    return [
        _drop_empty(
            {"id": g.get("group_id"), "title": _x(g, "title"), "description": _x(g, "description")}
        )
        for g in el.findall("group_list/group")
    ]


def _legacy_measurements(el: Any) -> list[JSON]:
    return [
        _drop_empty(
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


def _legacy_classes(measure: Any) -> list[JSON]:
    return [
        _drop_empty(
            {
                "title": _x(cls, "title"),
                "categories": [
                    _drop_empty(
                        {"title": _x(cat, "title"), "measurements": _legacy_measurements(cat)}
                    )
                    for cat in cls.findall("category_list/category")
                ],
            }
        )
        for cls in measure.findall("class_list/class")
    ]


def _legacy_denoms(measure: Any) -> list[JSON]:
    return [
        {
            "units": _x(a, "units"),
            "counts": [
                {"groupId": c.get("group_id"), "value": c.get("value")}
                for c in a.findall("count_list/count")
            ],
        }
        for a in measure.findall("analyzed_list/analyzed")
    ]


def _legacy_events(el: Any) -> tuple[list[JSON], dict[str, tuple[str | None, str | None]]]:
    """Event terms of serious/other events, and {group id: (affected, at risk)} of the Total row."""
    terms: list[JSON] = []
    totals: dict[str, tuple[str | None, str | None]] = {}
    if el is None:
        return terms, totals
    for cat in el.findall("category_list/category"):
        organ = _x(cat, "title")
        for ev in cat.findall("event_list/event"):
            stats = [
                _drop_empty(
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
                _drop_empty({"term": _x(ev, "sub_title"), "organSystem": organ, "stats": stats})
            )
    return terms, totals


def _legacy_results(cr: Any) -> JSON:
    results: JSON = {}
    flow = cr.find("participant_flow")
    if flow is not None:
        periods = []
        for p in flow.findall("period_list/period"):
            milestones = [
                {
                    "type": _x(m, "title"),
                    "achievements": [
                        {"groupId": c.get("group_id"), "numSubjects": c.get("count")}
                        for c in m.findall("participants_list/participants")
                    ],
                }
                for m in p.findall("milestone_list/milestone")
            ]
            drops = [
                {
                    "type": _x(d, "title"),
                    "reasons": [
                        {"groupId": c.get("group_id"), "numSubjects": c.get("count")}
                        for c in d.findall("participants_list/participants")
                    ],
                }
                for d in p.findall("drop_withdraw_reason_list/drop_withdraw_reason")
            ]
            periods.append(
                {"title": _x(p, "title"), "milestones": milestones, "dropWithdraws": drops}
            )
        results["participantFlowModule"] = _drop_empty(
            {
                "recruitmentDetails": _x(flow, "recruitment_details"),
                "preAssignmentDetails": _x(flow, "pre_assignment_details"),
                "groups": _legacy_groups(flow),
                "periods": periods,
            }
        )
    base = cr.find("baseline")
    if base is not None:
        results["baselineCharacteristicsModule"] = _drop_empty(
            {
                "populationDescription": _x(base, "population"),
                "groups": _legacy_groups(base),
                "denoms": _legacy_denoms(base),
                "measures": [
                    _drop_empty(
                        {
                            "title": _x(m, "title"),
                            "description": _x(m, "description"),
                            "paramType": _x(m, "param"),
                            "dispersionType": _x(m, "dispersion"),
                            "unitOfMeasure": _x(m, "units"),
                            "classes": _legacy_classes(m),
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
            "type": _enum(_x(o, "type")),
            "title": _x(o, "title"),
            "description": _x(o, "description"),
            "populationDescription": _x(o, "population"),
            "timeFrame": _x(o, "time_frame"),
            "groups": _legacy_groups(o),
        }
        if m is not None:
            outcome.update(
                {
                    "paramType": _x(m, "param"),
                    "dispersionType": _x(m, "dispersion"),
                    "unitOfMeasure": _x(m, "units"),
                    "denoms": _legacy_denoms(m),
                    "classes": _legacy_classes(m),
                }
            )
        outcome["analyses"] = [
            _drop_empty(
                {
                    "groupIds": _xs(a, "group_id_list/group_id"),
                    "groupDescription": _x(a, "groups_desc"),
                    "pValue": _x(a, "p_value"),
                    "statisticalMethod": _x(a, "method"),
                    "paramType": _x(a, "param_type"),
                    "paramValue": _x(a, "param_value"),
                    "ciPctValue": _x(a, "ci_percent"),
                    "ciLowerLimit": _x(a, "ci_lower_limit"),
                    "ciUpperLimit": _x(a, "ci_upper_limit"),
                }
            )
            for a in o.findall("analysis_list/analysis")
        ]
        outcomes.append(_drop_empty(outcome))
    if outcomes:
        results["outcomeMeasuresModule"] = {"outcomeMeasures": outcomes}
    events = cr.find("reported_events")
    if events is not None:
        serious, serious_totals = _legacy_events(events.find("serious_events"))
        other, other_totals = _legacy_events(events.find("other_events"))
        groups = []
        for g in _legacy_groups(events):
            gid = g.get("id") or ""
            s_aff, s_risk = serious_totals.get(gid, (None, None))
            o_aff, o_risk = other_totals.get(gid, (None, None))
            g.update(
                _drop_empty(
                    {
                        "seriousNumAffected": s_aff,
                        "seriousNumAtRisk": s_risk,
                        "otherNumAffected": o_aff,
                        "otherNumAtRisk": o_risk,
                    }
                )
            )
            groups.append(g)
        results["adverseEventsModule"] = _drop_empty(
            {
                "timeFrame": _x(events, "time_frame"),
                "description": _x(events, "desc"),
                "eventGroups": groups,
                "seriousEvents": serious,
                "otherEvents": other,
            }
        )
    limits = _x(cr, "limitations_and_caveats")
    if limits:
        results["moreInfoModule"] = {"limitationsAndCaveats": {"description": limits}}
    return results
