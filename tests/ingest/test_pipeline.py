"""End-to-end ingestion on real files: bad inputs each get a specific error while the rest of the
batch is stored; re-ingestion skips unchanged documents and replaces changed ones."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest

from core.config import IngestSettings, Settings
from core.sparse import SparseEncoder
from core.store import VectorStore, meta_for, open_store
from ingest.pipeline import Pipeline
from ingest.stats import ReportEntry

GOOD_JATS = "jats/elife/elife07586.xml"  # small real eLife article (CC-BY)
GOOD_TRIAL = "ctgov-legacy-xml/NCT00000102.xml"
GOOD_MEDLINE = "pubmed/pubmed-29768149.xml"


def _open(settings: Settings, embedder) -> VectorStore:  # type: ignore[no-untyped-def]
    sparse = SparseEncoder(settings.sparse)
    return open_store(settings.store, meta_for(settings, embedder.name, embedder.dim, sparse.name))


def _ingest(settings: Settings, store: VectorStore, embedder, paths: list[Path]):  # type: ignore[no-untyped-def]
    entries: list[ReportEntry] = []
    pipe = Pipeline(
        settings, store, embedder, SparseEncoder(settings.sparse), on_report=entries.append
    )
    return pipe.run(paths), entries


def _tar(entries: dict[str, bytes], symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if symlink:
            link = tarfile.TarInfo(symlink)
            link.type = tarfile.SYMTYPE
            link.linkname = "/etc/passwd"
            tar.addfile(link)
    return buf.getvalue()


@pytest.fixture
def bad_batch(tmp_path: Path, corpus: Path) -> Path:
    """A folder of real good inputs mixed with every kind of bad input we refuse."""
    d = tmp_path / "batch"
    d.mkdir()
    jats = (corpus / GOOD_JATS).read_bytes()
    pdf = (corpus / "pdf" / "10.1038%2Fs41467-023-39119-8.pdf").read_bytes()
    page = json.loads((corpus / "ctgov" / "studies-05.json").read_bytes())
    studies = page["studies"][:3]
    del studies[1]["protocolSection"]["identificationModule"]["nctId"]
    shutil.copy(corpus / GOOD_JATS, d / "good-article.xml")
    shutil.copy(corpus / GOOD_TRIAL, d / "good-trial.xml")
    shutil.copy(corpus / GOOD_MEDLINE, d / "good-medline.xml")
    (d / "truncated.pdf").write_bytes(pdf[: len(pdf) // 3])  # 1 corrupt/truncated PDF
    (d / "malformed.xml").write_bytes(jats[: len(jats) // 2])  # 2 malformed XML
    trial_json = (corpus / "ctgov" / "NCT04267848.json").read_bytes()
    (d / "truncated.json").write_bytes(trial_json[:5000])  # 3 truncated JSON
    (d / "empty.xml").write_bytes(b"")  # 4 empty file
    (d / "garbage.pdf").write_bytes(os.urandom(4096))  # 5 binary garbage
    (d / "unknown.json").write_text('{"hello": "not a trial"}')  # 6 unknown format
    latin1 = jats.replace(b"<article-title>", "<article-title>Caf\u00e9 ".encode("latin-1"), 1)
    (d / "latin1.xml").write_bytes(latin1)  # 7 wrong encoding (declared UTF-8)
    (d / "page-missing-nct.json").write_text(json.dumps({"studies": studies}))  # 8 no nctId
    with zipfile.ZipFile(d / "huge-member.zip", "w") as zf:  # 9 huge member
        zf.writestr("big.xml", b"<x>" + b"a" * 3_000_000 + b"</x>")
    (d / "traversal.tar.gz").write_bytes(  # 10 path traversal + link member
        _tar(
            {"../../evil.xml": jats, "ok/article.xml": jats.replace(b"07586", b"07587")}, "link.xml"
        )
    )
    shutil.copy(corpus / GOOD_JATS, d / "same-article-again.xml")  # 11 duplicate document
    (d / "truncated.xml.gz").write_bytes(  # 12 truncated gzip
        __import__("gzip").compress((corpus / GOOD_MEDLINE).read_bytes())[:300]
    )
    with zipfile.ZipFile(d / "absolute.zip", "w") as zf:  # 13 absolute path member
        zf.writestr("/etc/cron.d/evil.xml", jats)
    (d / "notes.txt").write_text("not a document")  # skipped, not a failure
    return d


def test_bad_inputs_get_specific_errors_and_the_rest_is_stored(
    bad_batch: Path,
    settings: Settings,
    embedder,  # type: ignore[no-untyped-def]
) -> None:
    settings = settings.model_copy(update={"ingest": IngestSettings(max_member_bytes=2_000_000)})
    store = _open(settings, embedder)
    try:
        stats, entries = _ingest(settings, store, embedder, [bad_batch])
        failures = {
            (Path(e.file.split("!")[0]).name, e.record): e.reason
            for e in entries
            if e.kind == "failure"
        }
        reasons = "\n".join(f"{k}: {v}" for k, v in sorted(failures.items(), key=str))

        def reason(file: str) -> str:
            hits = [v for (f, _r), v in failures.items() if f == file]
            assert hits, f"no failure for {file}:\n{reasons}"
            return " | ".join(hits)

        assert "corrupt or truncated PDF" in reason("truncated.pdf")
        assert "malformed XML" in reason("malformed.xml")
        assert "invalid JSON" in reason("truncated.json") and "line" in reason("truncated.json")
        assert reason("empty.xml") == "empty file"
        assert "binary content" in reason("garbage.pdf")
        assert "unknown format" in reason("unknown.json")
        assert reason("latin1.xml").startswith("wrong text encoding: byte 0xe9 at offset")
        assert "nctId" in reason("page-missing-nct.json")
        assert "member too large" in reason("huge-member.zip")
        assert "path traversal refused" in reason("traversal.tar.gz")
        assert "link member refused" in reason("traversal.tar.gz")
        assert "gzip" in reason("truncated.xml.gz")
        assert "path traversal refused (absolute path)" in reason("absolute.zip")
        dupes = [e for e in entries if e.kind == "duplicate"]
        assert len(dupes) == 1 and "already ingested in this run" in dupes[0].reason
        assert [e.file for e in entries if e.kind == "skipped"] == [str(bad_batch / "notes.txt")]
        # the rest of the batch is stored: 1 article + 1 legacy trial + 1 abstract + 2 trials
        # from the page + the safe member of the tar archive
        assert dict(stats.documents) == {"article": 2, "trial": 3, "abstract": 1}, reasons
        assert stats.failures == len(failures) >= 13
        assert store.count() == stats.chunks
        assert store.find_docs("nct_id", "NCT00000102") == {"nct:NCT00000102"}
    finally:
        store.close()


def test_reingest_unchanged_changed_and_superseded(
    tmp_path: Path,
    corpus: Path,
    settings: Settings,
    embedder,  # type: ignore[no-untyped-def]
) -> None:
    d = tmp_path / "in"
    d.mkdir()
    shutil.copy(corpus / GOOD_JATS, d / "a.xml")
    shutil.copy(corpus / GOOD_TRIAL, d / "t.xml")
    shutil.copy(corpus / GOOD_MEDLINE, d / "m.xml")
    store = _open(settings, embedder)
    try:
        first, _ = _ingest(settings, store, embedder, [d])
        n_points = store.count()
        assert first.stored_documents == 3 and n_points == first.chunks
        # every stage was timed, and no stage took longer than the whole run
        stages = [first.parse_seconds, first.embed_seconds, first.sparse_seconds]
        assert all(0 < t <= first.seconds for t in [*stages, first.write_seconds])
        ids_before = {c.chunk.chunk_id for c in store.doc_chunks("doi:10.7554/elife.07586")}

        second, entries = _ingest(settings, store, embedder, [d])
        assert second.stored_documents == 0 and second.unchanged == 3 and not entries
        assert store.count() == n_points  # nothing changed

        # a changed article: fewer paragraphs -> replaced, its stale tail chunks removed
        xml = (d / "a.xml").read_text()
        start = xml.index("<body>")
        (d / "a.xml").write_text(
            xml[: start + 6] + "<p>Only one paragraph now.</p>" + xml[xml.index("</body>") :]
        )
        third, _ = _ingest(settings, store, embedder, [d])
        assert third.replaced_docs == 1 and third.unchanged == 2
        after = store.doc_chunks("doi:10.7554/elife.07586")
        assert {c.chunk.chunk_id for c in after} < ids_before
        assert [c.chunk.ordinal for c in after] == list(range(len(after)))
        assert any("Only one paragraph now." in c.chunk.text for c in after)

        # the full text of the MEDLINE abstract's article arrives (JATS with the same DOI):
        # it replaces the abstract instead of being stored twice. The DOI is edited into a real
        # JATS file because the shared corpus holds no JATS/MEDLINE pair of the same article.
        jats = (
            (corpus / GOOD_JATS).read_text().replace("10.7554/eLife.07586", "10.1056/NEJMoa1715274")
        )
        (d / "full-text.xml").write_text(jats)
        fourth, entries = _ingest(settings, store, embedder, [d])
        assert dict(fourth.documents) == {"article": 1}
        replaced = [e for e in entries if e.kind == "replaced"]
        assert (
            len(replaced) == 1
            and "replaces pmid:29768149 (abstract): same doi" in replaced[0].reason
        )
        assert store.doc_chunks("pmid:29768149") == []
        assert store.find_docs("doi", "10.1056/nejmoa1715274") == {"doi:10.1056/nejmoa1715274"}
        # and on the next run the abstract is reported as a duplicate, not stored again
        fifth, entries = _ingest(settings, store, embedder, [d])
        assert fifth.stored_documents == 0
        assert [e.kind for e in entries] == ["duplicate"]
        assert "same article as doi:10.1056/nejmoa1715274" in entries[0].reason
    finally:
        store.close()


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_directory_without_permission_is_reported(corpus: Path) -> None:
    """Root ignores directory permissions, so as root the walk runs with the capabilities that
    bypass them dropped (util-linux ``setpriv``), which makes the kernel refuse it for real."""
    base = Path(tempfile.mkdtemp(prefix="litrag-perm-"))
    try:
        base.chmod(0o755)
        (base / "ok").mkdir()
        shutil.copy(corpus / GOOD_TRIAL, base / "ok" / "t.xml")
        (base / "locked").mkdir()
        shutil.copy(corpus / GOOD_TRIAL, base / "locked" / "t.xml")
        (base / "locked").chmod(0o000)
        code = (
            "import sys; from pathlib import Path; from core.config import IngestSettings; "
            "from ingest.discover import discover; "
            "[print(type(x).__name__, getattr(x, 'name', ''), getattr(x, 'source', ''), "
            "getattr(x, 'reason', '')) for x in discover([Path(sys.argv[1])], IngestSettings())]"
        )
        prefix: list[str] = []
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.fail("running as root needs util-linux setpriv to drop CAP_DAC_OVERRIDE")
            prefix = [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]
        out = subprocess.run(
            [*prefix, sys.executable, "-c", code, str(base)],
            capture_output=True,
            text=True,
            check=True,
        )
        lines = out.stdout.splitlines()
        assert f"RecordFailure  {base / 'locked'} permission denied" in lines, out
        assert f"Source {base / 'ok' / 't.xml'}  " in lines, out
    finally:
        (base / "locked").chmod(0o755)
        shutil.rmtree(base)
