"""The "Check a report" view end to end: a real headless Chromium against the real service.

Paste a report, check it, see each claim's verdict with its quote and the report's identifiers
resolved; the report's text (HTML, links) is shown as text, never as markup.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.web.server import Live
from tests.web.test_browser import TIMEOUT_MS

REPORT = """# Asthma regimens

The rate of adherence in the budesonide maintenance group was not 78.9% (1). Was it blinded?

Exacerbation rates with the two budesonide-containing regimens were similar and were lower than \
the rate with terbutaline <img src=x onerror="window.__pwned=1"> [see](javascript:alert(1)).

A registered trial tested an mRNA vaccine for mild asthma in adolescents (2).

## Sources

1. PMID: 29768149
2. https://clinicaltrials.gov/study/NCT04530518
"""


@pytest.fixture
def page(browser: Any, live: Live) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(live.base_url + "/")
    page.get_by_label("API key").fill(live.api_key)
    yield page
    context.close()
    assert not errors, f"errors in the page: {errors}"


def test_check_a_report(page: Any, live: Live) -> None:
    expected = httpx.post(
        f"{live.base_url}/v1/check",
        json={"text": REPORT},
        headers={"Authorization": f"Bearer {live.api_key}"},
        timeout=600,
    ).json()
    verdicts = [c["verdict"] for c in expected["claims"]]
    assert "contradicted" in verdicts and "supported" in verdicts

    page.get_by_label("Text of the report").fill(REPORT)
    page.get_by_role("button", name="Check").click()
    page.locator("#check-results").wait_for(state="visible", timeout=TIMEOUT_MS)

    claims = page.locator("#check-claims > li")
    assert claims.count() == len(expected["claims"])
    assert [claims.nth(i).get_attribute("data-verdict") for i in range(claims.count())] == verdicts
    contradicted = page.locator('#check-claims > li[data-verdict="contradicted"]').first
    assert "was not 78.9%" in contradicted.locator(".claim-text").inner_text()
    assert contradicted.locator(".verdict").inner_text().startswith("✗ contradicted by")
    assert "78.9%" in contradicted.locator(".evidence q").first.inner_text()
    supported = page.locator('#check-claims > li[data-verdict="supported"]').first
    # the claim is written as text: the report's HTML tag is dropped from it (markup, not
    # words), its link shows as the characters it is, nothing is rendered or run
    text = supported.locator(".claim-text").inner_text()
    api_text = next(c["text"] for c in expected["claims"] if c["verdict"] == "supported")
    assert text == api_text and "javascript:alert(1)" in text
    assert page.locator("#check-view img").count() == 0
    assert page.evaluate("() => window.__pwned") is None
    links = page.locator("#check-view a")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert all(h.startswith("https://") for h in hrefs), hrefs

    rows = page.locator("#check-references tbody tr")
    cells = {rows.nth(i).locator("td").first.inner_text(): rows.nth(i) for i in range(rows.count())}
    assert cells["NCT04530518"].get_attribute("data-found") == "false"
    assert "not in the store" in cells["NCT04530518"].inner_text()
    assert cells["PMID: 29768149"].get_attribute("data-found") == "true"
    assert "Budesonide-Formoterol" in cells["PMID: 29768149"].inner_text()
    summary = page.locator("#check-summary").inner_text()
    assert f"{len(verdicts)} claims" in summary
