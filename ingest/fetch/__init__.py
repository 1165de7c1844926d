"""``litrag fetch``: incremental, resumable downloads from PMC, PubMed and ClinicalTrials.gov.

``http`` is the one polite HTTP client (rate limits, retries, Retry-After), ``manifest`` the
crash-safe record of what was fetched, ``eutils``/``pmc``/``pubmed``/``trials`` the sources and
``cli`` the command.
"""
