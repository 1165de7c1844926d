// litrag web page, "Check a report": POST /v1/check with the pasted report, then list each claim
// with its verdict (supported by / contradicted by / no evidence in the indexed corpus), the
// deciding quotes, and the report's identifiers resolved against the store.
// The report and the documents are data: every text is inserted as a text node (never as HTML),
// and the only links are the source URLs the service builds from stored identifiers.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const VERDICTS = {
    supported: { label: "✓ supported by", className: "ok" },
    contradicted: { label: "✗ contradicted by", className: "contradicted" },
    no_evidence: { label: "∅ no evidence in the indexed corpus", className: "unsupported" },
  };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "className") node.className = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** Only http(s) URLs the service built become links. */
  function sourceLink(url, text) {
    if (typeof url !== "string" || !/^https:\/\//.test(url)) return text;
    return el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, text);
  }

  function headers() {
    const h = { "Content-Type": "application/json", Accept: "application/json" };
    const key = $("api-key") ? $("api-key").value.trim() : "";
    if (key) h.Authorization = `Bearer ${key}`;
    return h;
  }

  async function errorMessage(res) {
    if (res.status === 401) return "The service needs an API key: enter it in the API key field above.";
    let detail = res.statusText;
    try {
      const body = await res.json();
      detail = (body && body.error && body.error.message) || detail;
    } catch (_) {
      /* not JSON */
    }
    return `The service answered HTTP ${res.status}: ${detail}`;
  }

  function evidenceItem(e) {
    return el(
      "li",
      { className: `evidence ${e.verdict}` },
      el("q", { className: "quote" }, e.quote.text),
      " — ",
      sourceLink(e.url, e.title),
      e.section ? `, ${e.section}` : "",
    );
  }

  function claimItem(c) {
    const v = VERDICTS[c.verdict] || VERDICTS.no_evidence;
    const item = el(
      "li",
      { className: "claim", "data-verdict": c.verdict },
      el("p", { className: "claim-text" }, c.text),
      el("p", { className: `verdict ${v.className}` }, v.label),
    );
    if (c.evidence.length) item.append(el("ul", { className: "evidence-list" }, c.evidence.map(evidenceItem)));
    const notes = [];
    for (const cited of c.citations) {
      if (!cited.found) notes.push(`cites [${cited.label}]: not in the store`);
      else if (cited.verdict !== "supported") notes.push(`cites [${cited.label}]: the stored record does not support it (${cited.verdict.replace("_", " ")})`);
    }
    if (notes.length) item.append(el("p", { className: "reason" }, notes.join("; ")));
    return item;
  }

  function referencesTable(refs) {
    if (!refs.length) return el("p", { className: "help" }, "The report cites no identifier or URL.");
    const rows = refs.map((r) =>
      el(
        "tr",
        { "data-found": r.found ? "true" : "false" },
        el("td", null, r.id),
        el("td", null, r.kind),
        el("td", null, r.found ? "found" : "not in the store"),
        el("td", null, r.found ? sourceLink(r.url, r.title || r.doc_ids.join(", ")) : r.note),
      ),
    );
    return el(
      "table",
      { className: "check-refs" },
      el("thead", null, el("tr", null, ["id as written", "kind", "in the store", "stored title"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", null, rows),
    );
  }

  function show(result) {
    const s = result.summary;
    $("check-summary").textContent =
      `${s.claims} claims: ${s.supported} supported, ${s.contradicted} contradicted, ` +
      `${s.no_evidence} with no evidence in the indexed corpus. References: ` +
      `${s.references_found} of ${s.references} found in the store.`;
    $("check-claims").replaceChildren(...result.claims.map(claimItem));
    $("check-references").replaceChildren(referencesTable(result.references));
    $("check-results").hidden = false;
  }

  async function check(event) {
    event.preventDefault();
    const text = $("check-text").value;
    const box = $("check-error");
    box.hidden = true;
    box.textContent = "";
    if (!text.trim()) {
      box.textContent = "Paste a report to check.";
      box.hidden = false;
      return;
    }
    $("check-button").disabled = true;
    $("check-status").textContent = "Checking every claim against the indexed literature…";
    try {
      const res = await fetch("/v1/check", { method: "POST", headers: headers(), body: JSON.stringify({ text }) });
      if (!res.ok) throw new Error(await errorMessage(res));
      show(await res.json());
      $("check-status").textContent = "Checked.";
      $("check-results").focus();
    } catch (err) {
      $("check-status").textContent = "";
      box.textContent = err.message || String(err);
      box.hidden = false;
    } finally {
      $("check-button").disabled = false;
    }
  }

  function init() {
    $("check-form").addEventListener("submit", check);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
