// litrag web page: ask, stream the answer (POST /v1/answer, server-sent events), then show the
// verified answer whose every [n] opens the cited passage with the supporting quote highlighted.
// A sentence its cited passage contradicts is marked "contradicted by [n]" (the link highlights the
// contradicting quote), one the passage does not state "not supported by [n]".
// No external resources; all text is inserted as text nodes (never as HTML).
"use strict";

(() => {
  const KEY_STORAGE = "litrag.apiKey";
  // The mark compose() writes after a kept sentence that is not supported.
  const MARK = / \(⚠ (contradicted|not supported)(?: by \[(\d+)\])?\)/;
  const VERDICTS = {
    supported: { label: "✓ supported", className: "ok", what: "Supported by the cited passage" },
    contradicted: { label: "✗ contradicted", className: "contradicted", what: "Contradicted by the cited passage" },
    not_supported: { label: "⚠ not supported", className: "unsupported", what: "Not supported by the cited passage" },
  };
  const SOURCE_LABELS = {
    article: "Full-text article",
    pdf: "PDF",
    abstract: "PubMed abstract",
    trial: "Clinical trial",
  };
  const URL_LABELS = {
    pmc: "PMC",
    pubmed: "PubMed",
    doi: "DOI",
    clinicaltrials: "ClinicalTrials.gov",
  };

  const $ = (id) => document.getElementById(id);

  /** A new element: attributes (null/false are left out), then children (strings become text). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "className") node.className = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function externalLink(href, text, label) {
    return el("a", { href, target: "_blank", rel: "noopener noreferrer", "aria-label": label }, text);
  }

  function humanize(code) {
    if (!code) return "n/a";
    if (code === "NA") return "Not applicable";
    const m = /^(EARLY_)?PHASE(\d)$/.exec(code);
    if (m) return (m[1] ? "Early phase " : "Phase ") + m[2];
    const words = code.toLowerCase().replace(/_/g, " ");
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  // ---------------------------------------------------------------------------------------------
  // State of the page

  let current = null; // the final response being shown
  let controller = null; // AbortController of the request in flight
  let opener = null; // the citation link that opened the passage dialog

  function setStatus(text) {
    $("status").textContent = text;
  }

  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = !message;
  }

  // ---------------------------------------------------------------------------------------------
  // Request

  function filtersFromForm() {
    const form = $("ask-form");
    const filters = {};
    const types = [...form.querySelectorAll('input[name="source_types"]:checked')].map((i) => i.value);
    if (types.length) filters.source_types = types;
    const from = $("year-from").value.trim();
    const to = $("year-to").value.trim();
    if (from) filters.year_from = Number(from);
    if (to) filters.year_to = Number(to);
    if ($("trial-phase").value) filters.phases = [$("trial-phase").value];
    if ($("trial-status").value) filters.statuses = [$("trial-status").value];
    return Object.keys(filters).length ? filters : null;
  }

  function headers() {
    const h = { "Content-Type": "application/json", Accept: "text/event-stream" };
    const key = $("api-key").value.trim();
    if (key) h.Authorization = `Bearer ${key}`;
    return h;
  }

  async function errorMessage(res) {
    let detail = "";
    try {
      const body = await res.json();
      detail = (body && body.error && body.error.message) || JSON.stringify(body.detail || body);
    } catch (_) {
      detail = res.statusText;
    }
    if (res.status === 401) {
      return "The service needs an API key: enter it in the API key field and ask again.";
    }
    return `The service answered HTTP ${res.status}: ${detail}`;
  }

  /** Server-sent events of a fetch response body, read with a stream reader. */
  async function* serverEvents(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer = (buffer + decoder.decode(value, { stream: true })).replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = parseEvent(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (event) yield event;
      }
    }
    buffer += decoder.decode();
    const last = parseEvent(buffer.trim());
    if (last) yield last;
  }

  function parseEvent(block) {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return null;
    return { name, data: JSON.parse(data.join("\n")) };
  }

  function resetResults() {
    current = null;
    showError("");
    $("results").hidden = false;
    const answer = $("answer");
    answer.replaceChildren(el("div", { className: "draft" }));
    answer.dataset.state = "streaming";
    answer.setAttribute("aria-busy", "true");
    $("summary").replaceChildren();
    $("verification").hidden = true;
    $("verification-list").replaceChildren();
    $("trials").hidden = true;
    $("trials-body").replaceChildren();
    $("sources").hidden = true;
    $("sources-list").replaceChildren();
  }

  function setBusy(busy) {
    $("ask-button").disabled = busy;
    $("ask-button").textContent = busy ? "Asking…" : "Ask";
    $("stop-button").hidden = !busy;
  }

  async function ask(event) {
    event.preventDefault();
    const question = $("question").value.trim();
    if (!question) {
      showError("Type a question first.");
      $("question").focus();
      return;
    }
    const mode = $("ask-form").querySelector('input[name="mode"]:checked').value;
    const body = { question, mode, stream: true };
    const filters = filtersFromForm();
    if (filters) body.filters = filters;

    resetResults();
    setBusy(true);
    setStatus(mode === "report" ? "Planning the report and retrieving passages…" : "Retrieving passages…");
    controller = new AbortController();
    let final = false;
    try {
      const res = await fetch("/v1/answer", {
        method: "POST",
        headers: headers(),
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      if (!res.ok) {
        if (res.status === 401) $("api-key").focus();
        throw new Error(await errorMessage(res));
      }
      for await (const { name, data } of serverEvents(res)) {
        if (name === "passages") {
          setStatus(`${data.passages.length} passages retrieved; writing the answer…`);
        } else if (name === "delta") {
          $("answer").querySelector(".draft")?.append(data.text);
        } else if (name === "final") {
          setStatus("Verifying citations…");
          renderFinal(data);
          final = true;
        } else if (name === "error") {
          throw new Error(`${data.message} (HTTP ${data.status})`);
        }
      }
      if (!final) throw new Error("The answer stream ended before the final, verified answer.");
    } catch (err) {
      const answer = $("answer");
      answer.dataset.state = "error";
      if (err.name === "AbortError") {
        setStatus("Stopped.");
      } else {
        setStatus("");
        showError(err.message || String(err));
      }
    } finally {
      $("answer").setAttribute("aria-busy", "false");
      setBusy(false);
      controller = null;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The verified answer

  /** The sentence as compose() writes it into the answer: markers before the final stop. */
  function renderedSentence(sentence) {
    const markers = sentence.citations.map((n) => `[${n}]`).join("");
    const text = sentence.text;
    if (!markers) return text;
    return /[.!?]$/.test(text) ? `${text.slice(0, -1)} ${markers}${text.slice(-1)}` : `${text} ${markers}`;
  }

  /** A citation link; with ``sentence`` (an index) the dialog highlights that sentence's quote. */
  function citeLink(n, sentence) {
    const c = current && current.citations[n - 1];
    if (!c) return document.createTextNode(`[${n}]`);
    const quoted = sentence === undefined ? {} : { sentence: String(sentence) };
    return el(
      "a",
      {
        href: `#cite-${n}`,
        className: "cite",
        dataset: { n: String(n), ...quoted },
        "aria-label": `Citation ${n}: open the cited passage from ${c.title}`,
        title: c.title,
      },
      `[${n}]`,
    );
  }

  /** "supported", "contradicted" or "not_supported" (answers from before the 3-way verdict). */
  function verdictOf(sentence) {
    return sentence.verdict || (sentence.supported ? "supported" : "not_supported");
  }

  /** The number of the citation whose passage decided the verdict, if it is cited. */
  function decidingCitation(sentence) {
    return sentence.quote && sentence.quote.citation ? sentence.quote.citation : null;
  }

  /** The badge after a sentence that is not supported: "⚠ contradicted by [n]" and its reason. */
  function verdictBadge(verdict, n, sentence) {
    const v = VERDICTS[verdict] || VERDICTS.not_supported;
    const word = verdict === "contradicted" ? "⚠ contradicted" : "⚠ not supported";
    let detail = v.what;
    if (sentence) {
      const quote = sentence.quote && verdict === "contradicted" ? ` “${sentence.quote.text}”` : "";
      detail = `${v.what}${quote}: ${sentence.reason}`;
    }
    const link = n ? citeLink(n, sentence ? sentence.index : undefined) : null;
    return el(
      "span",
      { className: `badge ${v.className}`, title: detail, tabindex: link ? null : "0" },
      word,
      link ? [" by ", link] : "",
      el("span", { className: "visually-hidden" }, `: ${detail}`),
    );
  }

  /** The answer's Markdown escapes undone for display (the page shows text, never markup). */
  function plain(text) {
    return text.replace(/\\([\\[\]|])/g, "$1").replace(/&lt;/g, "<");
  }

  /** Text with [n] markers as citation links and verdict marks as badges. */
  function appendInline(parent, text) {
    const pattern = new RegExp(`\\[(\\d+)\\]|${MARK.source}`, "g");
    let pos = 0;
    let m;
    while ((m = pattern.exec(text)) !== null) {
      if (m.index > pos) parent.append(plain(text.slice(pos, m.index)));
      if (m[1] !== undefined) parent.append(citeLink(Number(m[1])));
      else parent.append(" ", verdictBadge(m[2] === "contradicted" ? "contradicted" : "not_supported", Number(m[3]) || null));
      pos = m.index + m[0].length;
    }
    if (pos < text.length) parent.append(plain(text.slice(pos)));
  }

  /** A paragraph of the answer; each verified sentence found in it gets its own span. */
  function renderParagraph(text, candidates) {
    const p = el("p");
    let pos = 0;
    for (const sentence of candidates) {
      if (sentence.used) continue;
      const form = renderedSentence(sentence);
      const at = text.indexOf(form, pos);
      if (at < 0) continue;
      sentence.used = true;
      appendInline(p, text.slice(pos, at));
      const verdict = verdictOf(sentence);
      const span = el("span", {
        className: verdict === "supported" ? "sentence" : `sentence ${VERDICTS[verdict].className}`,
        dataset: { sentence: String(sentence.index) },
      });
      appendInline(span, form);
      pos = at + form.length;
      if (verdict !== "supported") {
        const mark = MARK.exec(text.slice(pos));
        if (mark && mark.index === 0) pos += mark[0].length;
        span.append(" ", verdictBadge(verdict, decidingCitation(sentence), sentence));
      }
      p.append(span);
    }
    appendInline(p, text.slice(pos));
    return p;
  }

  function renderTable(lines) {
    const cells = (line) => line.replace(/^\||\|$/g, "").split(/(?<!\\)\|/).map((c) => plain(c.trim()));
    const rows = lines.filter((l) => !/^\|?\s*-{3}/.test(l));
    const table = el("table");
    if (rows.length) table.append(el("thead", {}, el("tr", {}, cells(rows[0]).map((c) => el("th", { scope: "col" }, c)))));
    table.append(el("tbody", {}, rows.slice(1).map((r) => el("tr", {}, cells(r).map((c) => el("td", {}, c))))));
    return el("div", { className: "table-wrap" }, table);
  }

  function renderAnswer(data) {
    const container = $("answer");
    container.replaceChildren();
    const sentences = data.verification.sentences.filter((s) => s.kept).map((s) => ({ ...s, used: false }));
    // A report's own sections are data.sections; its other parts (the trials table, the source
    // list) are re-rendered below from structured data, with links, so they are left out here.
    const own = new Set((data.sections || []).map((sec) => sec.title));
    const structured = { has: (title) => data.mode === "report" && !own.has(title) };
    let heading = null;
    for (const block of data.answer.split(/\n{2,}/)) {
      const trimmed = block.trim();
      if (!trimmed) continue;
      const h = /^#{2,3}\s+(.*)$/.exec(trimmed);
      if (h && !trimmed.includes("\n")) {
        heading = h[1];
        if (!structured.has(heading)) container.append(el("h3", {}, plain(heading)));
        continue;
      }
      if (heading && structured.has(heading)) continue;
      const lines = trimmed.split("\n");
      if (lines.every((l) => l.trim().startsWith("|"))) {
        container.append(renderTable(lines));
        continue;
      }
      const candidates = data.mode === "report" && heading ? sentences.filter((s) => s.section === heading) : sentences;
      container.append(renderParagraph(trimmed, candidates));
    }
  }

  function renderSummary(data) {
    const v = data.verification;
    const kept = v.sentences.filter((s) => s.kept);
    const contradicted = kept.filter((s) => verdictOf(s) === "contradicted").length;
    const unsupported = kept.filter((s) => verdictOf(s) === "not_supported").length;
    const dropped = v.sentences.length - kept.length;
    const repaired = v.sentences.filter((s) => s.repaired_from).length;
    const parts = [];
    if (contradicted || unsupported) {
      const bad = [];
      if (contradicted) bad.push(`${contradicted} contradicted by`);
      if (unsupported) bad.push(`${unsupported} not supported by`);
      parts.push(el("span", { className: "warn" }, `Of ${kept.length} sentences, ${bad.join(" and ")} their citations`));
    } else parts.push(`All ${kept.length} sentences verified against their cited passages`);
    if (dropped) parts.push(`${dropped} unsupported sentence${dropped > 1 ? "s" : ""} dropped`);
    if (repaired) parts.push(`${repaired} citation${repaired > 1 ? "s" : ""} re-attributed`);
    parts.push(`${data.citations.length} citation${data.citations.length === 1 ? "" : "s"}`);
    parts.push(`${data.generator} generator`);
    if (data.degraded) parts.push(el("span", { className: "warn" }, "LLM failed: extractive fallback"));
    if (data.timings && data.timings.total_ms !== undefined) parts.push(`${Math.round(data.timings.total_ms)} ms`);
    const summary = $("summary");
    summary.replaceChildren();
    parts.forEach((p, i) => summary.append(i ? " · " : "", p));

    const list = $("verification-list");
    list.replaceChildren(
      ...v.sentences.map((s) => {
        const verdict = verdictOf(s);
        const n = decidingCitation(s);
        const quote =
          s.quote && verdict !== "supported"
            ? el(
                "div",
                { className: `quote ${VERDICTS[verdict].className}` },
                verdict === "contradicted" ? "Contradicted by " : "Not supported by ",
                n ? citeLink(n, s.index) : "the cited passage",
                verdict === "contradicted" ? ": " : " (closest sentence): ",
                el("q", {}, s.quote.text),
              )
            : "";
        return el(
          "li",
          { dataset: { verdict } },
          el("span", { className: `verdict ${VERDICTS[verdict].className}` }, VERDICTS[verdict].label),
          s.kept ? "" : " (dropped)",
          " ",
          s.text,
          " ",
          ...s.citations.map((c) => citeLink(c)),
          quote,
          s.repair ? el("div", { className: "repair" }, `Citation re-attributed: ${s.repair}`) : "",
          el("div", { className: "reason" }, s.reason),
        );
      }),
    );
    $("verification").hidden = v.sentences.length === 0;
  }

  function renderTrials(trials) {
    const section = $("trials");
    if (!trials) {
      section.hidden = true;
      return;
    }
    const body = $("trials-body");
    if (!trials.length) {
      body.replaceChildren(el("p", {}, "No trial records were retrieved for this question."));
    } else {
      const head = ["NCT id", "Phase", "Status", "Conditions", "Title"];
      body.replaceChildren(
        el(
          "table",
          { id: "trials-table" },
          el("caption", {}, "Trials among the retrieved ClinicalTrials.gov records"),
          el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))),
          el(
            "tbody",
            {},
            trials.map((t) =>
              el(
                "tr",
                {},
                el("td", { className: "nct" }, externalLink(t.url, t.nct_id, `${t.nct_id} on ClinicalTrials.gov`)),
                el("td", {}, t.phases.length ? t.phases.map(humanize).join(", ") : "n/a"),
                el("td", {}, humanize(t.overall_status)),
                el("td", {}, t.conditions.join("; ") || "n/a"),
                el("td", {}, t.title),
              ),
            ),
          ),
        ),
      );
    }
    section.hidden = false;
  }

  function renderSources(data) {
    const list = $("sources-list");
    const citedBy = new Map();
    for (const c of data.citations) {
      if (!citedBy.has(c.source)) citedBy.set(c.source, []);
      citedBy.get(c.source).push(c.n);
    }
    list.replaceChildren(
      ...data.sources.map((s) => {
        const meta = [SOURCE_LABELS[s.source_type] || s.source_type, s.journal, s.year].filter(Boolean).join(" · ");
        const links = Object.entries(s.urls || {}).map(([kind, url]) =>
          externalLink(url, URL_LABELS[kind] || kind, `${URL_LABELS[kind] || kind}: ${s.title}`),
        );
        if (!links.length && s.url) links.push(externalLink(s.url, "Open source", `Open source: ${s.title}`));
        const cites = citedBy.get(s.n) || [];
        return el(
          "li",
          { id: `source-${s.n}`, value: String(s.n) },
          el("span", { className: "title" }, s.title),
          el("div", { className: "meta" }, meta, s.authors && s.authors.length ? ` · ${s.authors.slice(0, 3).join(", ")}${s.authors.length > 3 ? " et al." : ""}` : ""),
          links.length ? el("div", { className: "links" }, links) : el("div", { className: "meta" }, "No link stored for this document"),
          cites.length ? el("div", { className: "cited-as" }, "Cited as ", ...cites.flatMap((n, i) => [i ? " " : "", citeLink(n)])) : "",
        );
      }),
    );
    $("sources").hidden = data.sources.length === 0;
  }

  function renderFinal(data) {
    current = data;
    renderAnswer(data);
    renderSummary(data);
    renderTrials(data.mode === "report" ? data.trials || [] : null);
    renderSources(data);
    const answer = $("answer");
    answer.dataset.state = "final";
    answer.setAttribute("aria-busy", "false");
    const n = data.citations.length;
    setStatus(`Answer ready: ${n} citation${n === 1 ? "" : "s"}. Select a [number] to see the passage it cites.`);
  }

  // ---------------------------------------------------------------------------------------------
  // The passage dialog

  /** The passage dialog for citation ``n``; ``sentence`` (an index) highlights its quote. */
  function openPassage(n, link, sentence) {
    const c = current && current.citations[n - 1];
    if (!c) return;
    const passage = current.passages.find((p) => p.chunk_id === c.chunk_id);
    const source = current.sources.find((s) => s.n === c.source);
    const checked = sentence === undefined ? null : current.verification.sentences[sentence];
    const q = checked && checked.quote && checked.quote.chunk_id === c.chunk_id ? checked.quote : c.quote;
    const text = passage ? passage.text : q.text;
    let start = q.start;
    let end = q.end;
    if (text.slice(start, end) !== q.text) {
      const at = text.indexOf(q.text);
      start = at;
      end = at < 0 ? at : at + q.text.length;
    }

    $("passage-title").textContent = `[${n}] ${c.title}`;
    const where = [];
    if (c.section) where.push(`Section: ${c.section}`);
    if (c.page) where.push(`Page ${c.page}`);
    if (source) where.push([SOURCE_LABELS[source.source_type] || source.source_type, source.journal, source.year].filter(Boolean).join(", "));
    where.push(`Document ${c.doc_id}`);
    $("passage-meta").textContent = where.join(" · ");

    const quote = $("passage-text");
    quote.replaceChildren();
    if (start >= 0 && end > start) {
      const mark = el("mark", { id: "passage-mark" }, text.slice(start, end));
      quote.append(text.slice(0, start), mark, text.slice(end));
    } else {
      quote.append(text);
    }

    const links = $("passage-links");
    links.replaceChildren();
    const urls = Object.entries((source && source.urls) || {});
    if (c.url) {
      const kind = urls.find(([, url]) => url === c.url);
      const where = kind ? ` (${URL_LABELS[kind[0]] || kind[0]})` : "";
      links.append(externalLink(c.url, `Open source${where}`, `Open source${where}: ${c.title}, opens a new tab`));
    }
    for (const [kind, url] of urls) {
      if (url !== c.url) links.append(externalLink(url, URL_LABELS[kind] || kind, `${URL_LABELS[kind] || kind}: ${c.title}`));
    }
    if (!links.childNodes.length) links.append("No source link is stored for this document.");

    opener = link || null;
    const dialog = $("passage");
    if (!dialog.open) dialog.showModal();
    $("passage-close").focus();
    quote.querySelector("mark")?.scrollIntoView({ block: "center" });
  }

  function closePassage() {
    const dialog = $("passage");
    if (dialog.open) dialog.close();
  }

  // ---------------------------------------------------------------------------------------------
  // Wiring

  function init() {
    const keyInput = $("api-key");
    try {
      keyInput.value = sessionStorage.getItem(KEY_STORAGE) || "";
    } catch (_) {
      /* storage disabled: the field still works for this page */
    }
    keyInput.addEventListener("input", () => {
      try {
        if (keyInput.value) sessionStorage.setItem(KEY_STORAGE, keyInput.value);
        else sessionStorage.removeItem(KEY_STORAGE);
      } catch (_) {
        /* ignore */
      }
    });

    $("ask-form").addEventListener("submit", ask);
    $("question").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        $("ask-form").requestSubmit();
      }
    });
    $("stop-button").addEventListener("click", () => controller && controller.abort());

    // Citation links anywhere on the page (answer, verification list, sources).
    document.addEventListener("click", (e) => {
      const link = e.target.closest && e.target.closest("a.cite");
      if (!link) return;
      e.preventDefault();
      const sentence = link.dataset.sentence === undefined ? undefined : Number(link.dataset.sentence);
      openPassage(Number(link.dataset.n), link, sentence);
    });

    const dialog = $("passage");
    $("passage-close").addEventListener("click", closePassage);
    dialog.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.preventDefault();
        closePassage();
      }
    });
    dialog.addEventListener("click", (e) => {
      if (e.target === dialog) {
        // a click on the backdrop (outside the dialog's box) closes it
        const r = dialog.getBoundingClientRect();
        const inside = e.clientX >= r.left && e.clientX <= r.right && e.clientY >= r.top && e.clientY <= r.bottom;
        if (!inside) closePassage();
      }
    });
    dialog.addEventListener("close", () => {
      if (opener && document.contains(opener)) opener.focus();
      opener = null;
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
