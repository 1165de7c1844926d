"""The web page end to end: a real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright; no browser download) against the real service on 127.0.0.1.

Ask, watch the answer stream in, click a citation and see the cited passage with the quote
highlighted; a report with its trials table; keyboard only; contradicted and unsupported
sentences marked apart.
Screenshots go to artifacts/ (web-answer.png: the passage dialog over the answer).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.web.server import REPO, Live

ARTIFACTS = REPO / "artifacts"
QUESTION = "How are mRNA vaccines used to treat cancer?"
REPORT_QUESTION = "mRNA cancer vaccine clinical trials: phases and recruitment status"
TIMEOUT_MS = 240_000

# Records the text the page appends to the streaming draft, whatever happens to it later.
RECORD_STREAM = """
window.__streamed = [];
new MutationObserver((records) => {
  for (const r of records) {
    const target = r.target.nodeType === 1 ? r.target : r.target.parentElement;
    if (!target || !target.classList.contains("draft")) continue;
    for (const n of r.addedNodes) if (n.nodeType === 3) window.__streamed.push(n.data);
  }
}).observe(document, { childList: true, subtree: true });
"""

# WCAG contrast ratio of each selected element's text against its effective background.
CONTRAST = """(selectors) => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = {};
  for (const sel of selectors) {
    const el = document.querySelector(sel);
    if (!el) { out[sel] = null; continue; }
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
    out[sel] = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  }
  return out;
}"""


@pytest.fixture
def page(browser: Any, live: Live) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # (a refused request is logged by Chromium itself: "Failed to load resource ...")
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.add_init_script(RECORD_STREAM)
    page.goto(live.base_url + "/")
    page.get_by_label("API key").fill(live.api_key)
    yield page
    context.close()
    # no external resources: every request stayed on the service's origin
    outside = [u for u in requests if not u.startswith(live.base_url + "/")]
    assert not outside, f"the page requested other origins: {outside}"
    assert not errors, f"errors in the page: {errors}"


def _api_answer(live: Live, question: str, mode: str = "answer") -> dict[str, Any]:
    """The service's own (non-streaming) answer to the same question, to compare with."""
    r = httpx.post(
        f"{live.base_url}/v1/answer",
        json={"question": question, "mode": mode},
        headers={"Authorization": f"Bearer {live.api_key}"},
        timeout=300,
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _ask(page: Any, question: str) -> None:
    page.get_by_label("Question").fill(question)
    page.get_by_role("button", name="Ask").click()
    page.locator('#answer[data-state="final"]').wait_for(timeout=TIMEOUT_MS)


def _screenshot(page: Any, name: str, record: Callable[[str, object], None]) -> Path:
    """Save a screenshot under artifacts/; its path goes to stdout and the JUnit properties."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000
    print(f"\nscreenshot: {path}")
    record(f"screenshot:{name}", str(path))
    return path


def test_page_is_accessible_and_self_contained(page: Any, live: Live) -> None:
    r = httpx.get(live.base_url + "/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", r.text), "external resource"
    # every form control has a label
    unlabeled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')]
            .filter((e) => !e.labels?.length && !e.getAttribute('aria-label')
                           && !(e.tagName === 'BUTTON' && e.textContent.trim()))
            .map((e) => e.id || e.outerHTML)"""
    )
    assert unlabeled == []
    duplicates = page.evaluate(
        """() => { const ids = [...document.querySelectorAll('[id]')].map((e) => e.id);
                   return ids.filter((id, i) => ids.indexOf(id) !== i); }"""
    )
    assert duplicates == []
    assert page.locator("#answer").get_attribute("aria-live") == "polite"
    assert page.get_by_role("radio", name="Answer").is_checked()
    # the stylesheet and the script came from /static
    assert page.evaluate("() => getComputedStyle(document.body).fontFamily").startswith("system-ui")


def test_ask_stream_and_open_citation(
    page: Any, live: Live, record_property: Callable[[str, object], None]
) -> None:
    expected = _api_answer(live, QUESTION)
    assert expected["citations"], "the sample store should answer this question with citations"
    _ask(page, QUESTION)

    streamed = "".join(page.evaluate("() => window.__streamed"))
    assert streamed.strip(), "no delta was rendered while the answer streamed"
    first = expected["verification"]["sentences"][0]["text"]
    assert first in streamed
    answer = page.locator("#answer")
    assert answer.get_attribute("aria-busy") == "false"
    assert page.get_by_role("status").inner_text().startswith("Answer ready")

    cites = page.locator("#answer a.cite")
    assert cites.count() >= len(expected["citations"])
    assert cites.first.inner_text() == "[1]"
    assert page.locator("#answer .sentence").count() == len(expected["verification"]["sentences"])
    sources = page.locator("#sources-list > li")
    assert sources.count() == len(expected["sources"])

    cites.first.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for(state="visible")
    c1 = expected["citations"][0]
    mark = dialog.locator("mark")
    assert mark.count() == 1
    assert mark.text_content() == c1["quote"]["text"] != ""
    assert c1["title"] in dialog.locator("#passage-title").inner_text()
    assert c1["section"] in dialog.locator("#passage-meta").inner_text()
    link = dialog.get_by_role("link", name=re.compile("^Open source"))
    assert link.get_attribute("href") == c1["url"]
    focus_inside = "() => document.getElementById('passage').contains(document.activeElement)"
    assert page.evaluate(focus_inside), "focus moves into the dialog"
    # the highlighted span is the quote at its offsets in the passage text
    passage = next(p for p in expected["passages"] if p["chunk_id"] == c1["chunk_id"])
    assert dialog.locator("#passage-text").text_content() == passage["text"]
    assert passage["text"][c1["quote"]["start"] : c1["quote"]["end"]] == c1["quote"]["text"]

    path = _screenshot(page, "web-answer.png", record_property)
    assert path.is_file()

    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert page.evaluate("() => document.activeElement.classList.contains('cite')")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-answer-page.png"), full_page=True)


def test_keyboard_opens_citation(page: Any, live: Live) -> None:
    _ask(page, QUESTION)
    page.get_by_label("Question").focus()
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.matches('#answer a.cite')"):
            break
    else:
        pytest.fail("Tab never reached a citation link")
    n = page.evaluate("() => document.activeElement.dataset.n")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    dialog.wait_for(state="visible")
    assert dialog.locator("#passage-title").inner_text().startswith(f"[{n}] ")
    assert dialog.locator("mark").text_content()
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")


def test_report_shows_trials_table(
    page: Any, live: Live, record_property: Callable[[str, object], None]
) -> None:
    expected = _api_answer(live, REPORT_QUESTION, "report")
    assert expected["trials"]
    page.get_by_label(re.compile("^Report")).check()
    _ask(page, REPORT_QUESTION)
    table = page.locator("#trials-table")
    table.wait_for(state="visible")
    headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    assert headers[:4] == ["NCT id", "Phase", "Status", "Conditions"]
    rows = table.locator("tbody tr")
    assert rows.count() == len(expected["trials"])
    first = rows.first.locator("td")
    t0 = expected["trials"][0]
    assert first.nth(0).inner_text() == t0["nct_id"]
    assert first.nth(0).locator("a").get_attribute("href") == t0["url"]
    assert first.nth(3).inner_text() == "; ".join(t0["conditions"])
    # the report's sections are headings; the markdown table and list are not shown as text
    section_titles = [s["title"] for s in expected["sections"]]
    assert page.locator("#answer h3").all_inner_texts() == section_titles
    assert "|---|" not in page.locator("#answer").inner_text()
    table.scroll_into_view_if_needed()
    _screenshot(page, "web-report.png", record_property)


def test_contradicted_and_unsupported_sentences_are_marked(
    page: Any, live: Live, record_property: Callable[[str, object], None]
) -> None:
    """The page tells "contradicted by [n]" (with the contradicting quote) from "not supported by
    [n]". The extractive answer's sentences are supported, so the real final event is altered on
    its way to the page the way compose() writes such sentences (flag policy)."""
    altered: dict[str, Any] = {}

    def alter(route: Any) -> None:
        response = route.fetch()
        events = response.text().split("\n\n")
        for i, block in enumerate(events):
            if block.startswith("event: final\n"):
                data = json.loads(block.split("data: ", 1)[1])
                passages = {p["chunk_id"]: p for p in data["passages"]}
                checks = data["verification"]["sentences"]
                for s, verdict in zip(checks, ("contradicted", "not_supported"), strict=False):
                    n = s["citations"][0]
                    cite = data["citations"][n - 1]
                    text = passages[cite["chunk_id"]]["text"]
                    # a span other than the citation's own quote: the link must highlight this one
                    start = 0 if cite["quote"]["start"] > 0 else min(len(text) // 2, 40)
                    end = min(len(text), start + 60)
                    s["verdict"], s["supported"] = verdict, False
                    s["reason"] = f"test: {verdict} reason"
                    s["quote"] = {
                        "text": text[start:end],
                        "start": start,
                        "end": end,
                        "chunk_id": cite["chunk_id"],
                        "citation": n,
                    }
                    markers, sentence = "".join(f"[{c}]" for c in s["citations"]), s["text"]
                    form = f"{sentence[:-1]} {markers}{sentence[-1]}"
                    assert sentence[-1] in ".!?" and form in data["answer"]
                    mark = f" (⚠ {verdict.replace('_', ' ')} by [{n}])"
                    data["answer"] = data["answer"].replace(form, form + mark, 1)
                    altered[verdict] = s
                events[i] = f"event: final\ndata: {json.dumps(data)}"
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        route.fulfill(response=response, headers=headers, body="\n\n".join(events))

    page.route("**/v1/answer", alter)
    _ask(page, QUESTION)
    assert set(altered) == {"contradicted", "not_supported"}, "the answer needs two sentences"
    contra, unsup = altered["contradicted"], altered["not_supported"]
    answer = page.locator("#answer")

    contradicted = answer.locator(".sentence.contradicted")
    assert contradicted.count() == 1
    badge = contradicted.locator(".badge.contradicted")
    assert badge.inner_text().startswith(f"⚠ contradicted by [{contra['quote']['citation']}]")
    title = badge.get_attribute("title") or ""
    assert contra["quote"]["text"] in title and "test: contradicted reason" in title

    unsupported = answer.locator(".sentence.unsupported")
    assert unsupported.count() == 1
    badge = unsupported.locator(".badge.unsupported")
    assert badge.inner_text().startswith(f"⚠ not supported by [{unsup['quote']['citation']}]")
    assert "test: not_supported reason" in (badge.get_attribute("title") or "")
    assert "contradicted" not in badge.inner_text()

    assert "(⚠" not in answer.inner_text()
    summary = page.locator("#summary").inner_text()
    assert "1 contradicted by" in summary and "1 not supported by" in summary

    items = page.locator("#verification-list > li")
    row = page.locator('#verification-list > li[data-verdict="contradicted"]')
    assert row.count() == 1 and items.count() == len(page.locator("#answer .sentence").all())
    assert (row.locator(".verdict").text_content() or "").startswith("✗ contradicted")
    assert row.locator(".quote q").text_content() == contra["quote"]["text"]
    row = page.locator('#verification-list > li[data-verdict="not_supported"]')
    assert (row.locator(".verdict").text_content() or "").startswith("⚠ not supported")

    # the link in the badge opens the passage with the contradicting quote highlighted
    contradicted.locator(".badge a.cite").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for(state="visible")
    assert dialog.locator("mark").text_content() == contra["quote"]["text"]
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")

    selectors = [
        "body",
        "label",
        ".help",
        "#answer .sentence",
        "#answer .sentence.unsupported",
        "#answer .sentence.contradicted",
        "#answer .badge.unsupported",
        "#answer .badge.contradicted",
        "#answer .badge a.cite",
        "#answer a.cite",
        "#summary",
        "#sources-list .meta",
        "button[type=submit]",
    ]
    ratios = page.evaluate(CONTRAST, selectors)
    print("\ncontrast:", {k: round(v, 1) for k, v in ratios.items() if v})
    low = {k: v for k, v in ratios.items() if not isinstance(v, float | int) or not v >= 4.5}
    assert not low, f"text contrast below WCAG AA 4.5:1: {low}"
    contradicted.scroll_into_view_if_needed()
    _screenshot(page, "web-unverified.png", record_property)


def test_missing_key_is_explained(page: Any) -> None:
    page.get_by_label("API key").fill("")
    page.get_by_label("Question").fill(QUESTION)
    page.get_by_role("button", name="Ask").click()
    alert = page.get_by_role("alert")
    alert.wait_for(state="visible")
    assert "API key" in alert.inner_text()
    assert page.evaluate("() => document.activeElement.id") == "api-key"


def test_filters_are_sent_and_applied(page: Any, live: Live) -> None:
    page.get_by_role("checkbox", name="Clinical trials").check()
    page.get_by_label("From year").fill("2020")
    page.get_by_label("Trial phase").select_option("PHASE1")
    page.get_by_label("Trial status").select_option("RECRUITING")
    with page.expect_request("**/v1/answer") as sent:
        _ask(page, QUESTION)
    body = json.loads(sent.value.post_data or "{}")
    assert body == {
        "question": QUESTION,
        "mode": "answer",
        "stream": True,
        "filters": {
            "source_types": ["trial"],
            "year_from": 2020,
            "phases": ["PHASE1"],
            "statuses": ["RECRUITING"],
        },
    }
    assert sent.value.headers["authorization"] == f"Bearer {live.api_key}"
    sources = page.locator("#sources-list > li")
    assert sources.count() >= 1
    r = httpx.post(
        f"{live.base_url}/v1/answer",
        json={k: v for k, v in body.items() if k != "stream"},
        headers={"Authorization": f"Bearer {live.api_key}"},
        timeout=300,
    )
    for p in r.json()["passages"]:
        assert p["trial"]["overall_status"] == "RECRUITING"
        assert "PHASE1" in p["trial"]["phases"] and p["year"] >= 2020
    assert sources.count() == len(r.json()["sources"])
