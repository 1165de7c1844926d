"""A CT.gov API v2 study as a :class:`~core.schemas.Document`: filter fields and one section per
group of the record's modules (see the package docstring)."""

from __future__ import annotations

from core.ids import doc_id_for, normalize_nct
from core.schemas import Document, Identifiers, Reference, Section, SourceType, TrialInfo
from ingest.parsers.ctgov.results import results_text
from ingest.parsers.ctgov.values import (
    ISO_DATE_RE,
    JSON,
    Counts,
    capped,
    child,
    children,
    clean,
    date_line,
    date_struct,
    dedupe,
    human_words,
    join_blocks,
    join_lines,
    labelled,
    lower_human_words,
    non_placeholder,
    text_of,
    texts_of,
    to_date,
)
from ingest.parsers.links import reference_mentions

SECTION_KIND = "trial-module"


# Caps that keep one huge record from exploding the index; overflow is counted in `unsupported`.
MAX_LIST_ITEMS = 60  # protocol outcomes, interventions, arm groups (each)
MAX_OTHER_NAMES = 12  # synonyms listed per intervention
MAX_COUNTRIES = 15


class NoNctId(Exception):
    """A study without a usable NCT number."""


def build_document(
    study: JSON, source_name: str, links_source: str = "ctgov-references"
) -> Document:
    """The Document of a v2 study; raises NoNctId without a usable NCT number.

    ``links_source`` names where its reference PMIDs/DOIs were read (legacy XML says so)."""
    proto = child(study, "protocolSection")
    ident = child(proto, "identificationModule")
    raw_id = text_of(ident, "nctId")
    if not raw_id:
        raise NoNctId("no nctId")
    nct = normalize_nct(raw_id)
    if not nct:
        raise NoNctId(f"no nctId: malformed {raw_id!r}")

    status = child(proto, "statusModule")
    sponsor_mod = child(proto, "sponsorCollaboratorsModule")
    conds = child(proto, "conditionsModule")
    design = child(proto, "designModule")
    arms = child(proto, "armsInterventionsModule")
    results = child(study, "resultsSection")
    counts: Counts = {}

    brief_title = " ".join(clean(text_of(ident, "briefTitle")).split())
    official_title = " ".join(clean(text_of(ident, "officialTitle")).split())
    title = brief_title or official_title or nct

    start, _ = date_struct(status, "startDateStruct")
    completion, _ = date_struct(status, "completionDateStruct")
    first_post, _ = date_struct(status, "studyFirstPostDateStruct")
    start_iso = start if start and ISO_DATE_RE.match(start) else None
    completion_iso = completion if completion and ISO_DATE_RE.match(completion) else None
    pub_date = to_date(first_post)
    start_day = to_date(start_iso)
    year = start_day.year if start_day else (pub_date.year if pub_date else None)

    has_results = study.get("hasResults") is True or bool(results)
    trial = TrialInfo(
        nct_id=nct,
        overall_status=text_of(status, "overallStatus"),
        phases=texts_of(design, "phases"),
        study_type=text_of(design, "studyType"),
        conditions=texts_of(conds, "conditions"),
        interventions=dedupe(
            name for i in children(arms, "interventions") if (name := clean(text_of(i, "name")))
        ),
        sponsor=text_of(child(sponsor_mod, "leadSponsor"), "name"),
        start_date=start_iso,
        completion_date=completion_iso,
        has_results=has_results,
    )

    texts: list[tuple[str, str]] = [
        ("Summary", _summary_text(ident, child(proto, "descriptionModule"), official_title, title)),
        (
            "Description",
            non_placeholder(text_of(child(proto, "descriptionModule"), "detailedDescription")),
        ),
        ("Conditions and interventions", _conditions_text(proto, study, counts)),
        ("Design", _design_text(design)),
        ("Eligibility", _eligibility_text(child(proto, "eligibilityModule"))),
        ("Outcomes", _outcomes_text(child(proto, "outcomesModule"), counts)),
        ("Results", results_text(results, counts) if results else ""),
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
        keywords=texts_of(conds, "keywords"),
        references=_references(child(proto, "referencesModule")),
        trial=trial,
        links=reference_mentions(
            (
                (text_of(r, "pmid"), text_of(r, "citation") or "", text_of(r, "type"))
                for r in children(child(proto, "referencesModule"), "references")
            ),
            source=links_source,
            where="referencesModule",
        ),
        source_path=source_name,
        unsupported=counts,
    )


def _summary_text(ident: JSON, desc: JSON, official: str, title: str) -> str:
    head = join_lines(
        [
            labelled("Official title", official) if official and official != title else None,
            labelled("Acronym", text_of(ident, "acronym")),
        ]
    )
    return join_blocks([head, non_placeholder(text_of(desc, "briefSummary"))])


def _conditions_text(proto: JSON, study: JSON, counts: Counts) -> str:
    conds = child(proto, "conditionsModule")
    arms = child(proto, "armsInterventionsModule")
    derived = child(study, "derivedSection")
    mesh_c = [
        t
        for m in children(child(derived, "conditionBrowseModule"), "meshes")
        if (t := text_of(m, "term"))
    ]
    mesh_i = [
        t
        for m in children(child(derived, "interventionBrowseModule"), "meshes")
        if (t := text_of(m, "term"))
    ]
    head = join_lines(
        [
            labelled("Conditions", "; ".join(texts_of(conds, "conditions"))),
            labelled("Keywords", "; ".join(texts_of(conds, "keywords"))),
            labelled("Condition MeSH terms", "; ".join(dedupe(mesh_c))),
            labelled("Intervention MeSH terms", "; ".join(dedupe(mesh_i))),
        ]
    )

    rows = []
    for i in capped(
        children(arms, "interventions"), MAX_LIST_ITEMS, counts, "protocol.interventions"
    ):
        name = clean(text_of(i, "name"))
        if not name:
            continue
        kind = human_words(text_of(i, "type"))
        row = f"- {kind}: {name}" if kind else f"- {name}"
        others = capped(texts_of(i, "otherNames"), MAX_OTHER_NAMES, counts, "protocol.other_names")
        if others:
            row += f" (other names: {', '.join(others)})"
        if d := clean(text_of(i, "description")):
            row += f". {d}"
        rows.append(row)
    interventions = "Interventions:\n" + "\n".join(rows) if rows else ""

    groups = []
    for g in capped(children(arms, "armGroups"), MAX_LIST_ITEMS, counts, "protocol.arm_groups"):
        label = clean(text_of(g, "label"))
        if not label:
            continue
        kind = lower_human_words(text_of(g, "type"))
        row = f"- {label} ({kind})" if kind else f"- {label}"
        if d := clean(text_of(g, "description")):
            row += f": {d}"
        if names := texts_of(g, "interventionNames"):
            row += f"\n  Interventions: {'; '.join(names)}"
        groups.append(row)
    arm_text = "Arm groups:\n" + "\n".join(groups) if groups else ""
    return join_blocks([head, interventions, arm_text])


def _design_text(design: JSON) -> str:
    info = child(design, "designInfo")
    masking = child(info, "maskingInfo")
    enrol = child(design, "enrollmentInfo")
    bio = child(design, "bioSpec")

    study_type = human_words(text_of(design, "studyType"))
    if study_type and design.get("patientRegistry") is True:
        study_type += " (patient registry)"
    mask = human_words(text_of(masking, "masking"))
    who = [lower_human_words(w) for w in texts_of(masking, "whoMasked")]
    if mask and who:
        mask += f" ({', '.join(who)})"
    enrolment = text_of(enrol, "count")
    if enrolment:
        enrolment += " participants"
        if kind := text_of(enrol, "type"):
            enrolment += f" ({lower_human_words(kind)})"
    return join_lines(
        [
            labelled("Study type", study_type),
            labelled("Phase", ", ".join(human_words(p) for p in texts_of(design, "phases"))),
            labelled("Allocation", human_words(text_of(info, "allocation"))),
            labelled("Intervention model", human_words(text_of(info, "interventionModel"))),
            labelled("Model description", clean(text_of(info, "interventionModelDescription"))),
            labelled("Primary purpose", human_words(text_of(info, "primaryPurpose"))),
            labelled("Observational model", human_words(text_of(info, "observationalModel"))),
            labelled("Time perspective", human_words(text_of(info, "timePerspective"))),
            labelled("Masking", mask),
            labelled("Masking description", clean(text_of(masking, "description"))),
            labelled("Enrollment", enrolment),
            labelled("Target duration", text_of(design, "targetDuration")),
            labelled("Biospecimen retention", human_words(text_of(bio, "retention"))),
            labelled("Biospecimen description", clean(text_of(bio, "description"))),
        ]
    )


def _eligibility_text(elig: JSON) -> str:
    min_age, max_age = text_of(elig, "minimumAge"), text_of(elig, "maximumAge")
    healthy = elig.get("healthyVolunteers")
    head = join_lines(
        [
            labelled("Sex", human_words(text_of(elig, "sex"))),
            labelled("Gender description", clean(text_of(elig, "genderDescription"))),
            labelled("Minimum age", min_age),
            labelled("Maximum age", max_age),
            labelled("Age groups", ", ".join(human_words(a) for a in texts_of(elig, "stdAges"))),
            labelled("Accepts healthy volunteers", text_of(elig, "healthyVolunteers"))
            if isinstance(healthy, bool)
            else None,
            labelled("Sampling method", human_words(text_of(elig, "samplingMethod"))),
        ]
    )
    population = clean(text_of(elig, "studyPopulation"))
    return join_blocks(
        [
            head,
            f"Study population: {population}" if population else None,
            clean(text_of(elig, "eligibilityCriteria")),
        ]
    )


def _outcomes_text(outcomes: JSON, counts: Counts) -> str:
    blocks = []
    for key, label in (
        ("primaryOutcomes", "Primary outcome"),
        ("secondaryOutcomes", "Secondary outcome"),
        ("otherOutcomes", "Other outcome"),
    ):
        for o in capped(children(outcomes, key), MAX_LIST_ITEMS, counts, "protocol.outcomes"):
            measure = clean(text_of(o, "measure"))
            if not measure:
                continue
            blocks.append(
                join_lines(
                    [
                        f"{label}: {measure}",
                        labelled("Time frame", clean(text_of(o, "timeFrame"))),
                        clean(text_of(o, "description")),
                    ]
                )
            )
    return join_blocks(blocks)


def _status_text(proto: JSON, counts: Counts) -> str:
    status = child(proto, "statusModule")
    sponsor_mod = child(proto, "sponsorCollaboratorsModule")
    contacts = child(proto, "contactsLocationsModule")
    collaborators = dedupe(
        n for c in children(sponsor_mod, "collaborators") if (n := text_of(c, "name"))
    )
    officials = []
    for o in children(contacts, "overallOfficials"):
        parts = [p for p in (text_of(o, "name"), text_of(o, "affiliation")) if p]
        if parts:
            role = lower_human_words(text_of(o, "role"))
            officials.append(", ".join(parts) + (f" ({role})" if role else ""))
    locations = children(contacts, "locations")
    countries = dedupe(c for loc in locations if (c := text_of(loc, "country")))
    countries = countries or texts_of(contacts, "countries")
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
    last_known = text_of(status, "lastKnownStatus")
    return join_lines(
        [
            labelled("Overall status", human_words(text_of(status, "overallStatus"))),
            labelled("Last known status", human_words(last_known)) if last_known else None,
            labelled("Why stopped", clean(text_of(status, "whyStopped"))),
            date_line("Start date", status, "startDateStruct"),
            date_line("Primary completion date", status, "primaryCompletionDateStruct"),
            date_line("Completion date", status, "completionDateStruct"),
            date_line("First posted", status, "studyFirstPostDateStruct"),
            date_line("Results first posted", status, "resultsFirstPostDateStruct"),
            date_line("Last update posted", status, "lastUpdatePostDateStruct"),
            labelled("Lead sponsor", text_of(child(sponsor_mod, "leadSponsor"), "name")),
            labelled("Collaborators", "; ".join(collaborators)),
            labelled(
                "Overall official" + ("s" if len(officials) > 1 else ""), "; ".join(officials)
            ),
            labelled("Locations", where),
        ]
    )


def _references(refs: JSON) -> list[Reference]:
    out = []
    for i, r in enumerate(children(refs, "references"), start=1):
        citation = clean(text_of(r, "citation"))
        if not citation:
            continue
        pmid = text_of(r, "pmid")
        pmid = pmid if pmid and pmid.isascii() and pmid.isdigit() else None
        out.append(Reference(ref_id=f"ref{i}", text=citation, pmid=pmid))
    return out
