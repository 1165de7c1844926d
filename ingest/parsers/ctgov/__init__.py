"""ClinicalTrials.gov records: API v2 JSON (study, page, array, JSON lines) and legacy XML.

Both formats end up in one shape: a legacy ``<clinical_study>`` is first converted to the API v2
layout (``protocolSection`` / ``resultsSection`` modules, enum-style status, phases and study
type), then a single builder turns a v2 study into a :class:`~core.schemas.Document` whose
sections follow the record's modules, each ``kind="trial-module"``:

``Summary`` (official title + brief summary), ``Description``, ``Conditions and interventions``,
``Design``, ``Eligibility``, ``Outcomes``, ``Results`` (posted results, bounded) and ``Status``.

A section without text is left out. Lists that can be very long (outcome measures, result values,
adverse-event terms ...) are capped; what was left out is counted in ``Document.unsupported``.

Modules, in the order data flows through them:

- ``envelope``: JSON files, pages, arrays and JSON lines → one v2 study each;
- ``legacy`` (with ``legacy_fields``, ``legacy_results``): legacy XML → a v2 study;
- ``study``: a v2 study → Document, with ``results`` for the posted results;
- ``values``: safe accessors, text cleaning, enum words and dates shared by all of them.
"""

from ingest.parsers.ctgov.envelope import looks_like_ctgov_json, parse_ctgov_json
from ingest.parsers.ctgov.legacy import looks_like_ctgov_xml, parse_ctgov_xml

__all__ = [
    "looks_like_ctgov_json",
    "looks_like_ctgov_xml",
    "parse_ctgov_json",
    "parse_ctgov_xml",
]
