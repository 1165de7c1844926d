"""``litrag ingest``: bulk ingestion with progress, a summary table and a JSON lines report."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.chunking import check_budget
from core.cli import EXIT_USAGE, load_settings
from core.config import Settings
from core.embedding import Embedder, load_embedder
from core.errors import LitragError, StoreError
from core.sparse import SparseEncoder
from core.store import StoreMeta, VectorStore, meta_for, open_store
from ingest.pipeline import IngestStats, Pipeline, ReportEntry

EXIT_OK, EXIT_FAILURES = 0, 1


def ingest(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Files or directories (.nxml/.xml/.json/.jsonl/.pdf/.gz/.tar.gz/.zip)"),
    ],
    collection: Annotated[
        str | None, typer.Option(help="Collection name (default: derived from model + chunking)")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Chunks per embed + upsert batch")
    ] = None,
    recreate: Annotated[
        bool, typer.Option("--recreate", help="Delete the collection first and rebuild it")
    ] = False,
    report: Annotated[
        Path | None, typer.Option(help="Write every failure/duplicate/skip as JSON lines here")
    ] = None,
    optimize: Annotated[bool, typer.Option(help="Build the HNSW index at the end (Edge)")] = True,
) -> None:
    """Parse, chunk, embed and store documents: JATS, PDF, ClinicalTrials.gov, MEDLINE.

    Exit codes: 0 everything ingested, 1 some inputs failed (all others stored), 2 usage or
    configuration error.
    """
    console = Console(stderr=True)
    settings = load_settings(console)
    if batch_size:
        settings = settings.model_copy(
            update={"ingest": settings.ingest.model_copy(update={"batch_size": batch_size})}
        )
    missing = [p for p in paths if not p.exists()]
    if missing and len(missing) == len(paths):
        console.print(
            f"[red]error:[/red] no such file or directory: {', '.join(map(str, missing))}"
        )
        raise typer.Exit(EXIT_USAGE)
    report_fh: IO[str] | None = None
    try:
        sparse = SparseEncoder(settings.sparse)
        # a store held by another process is refused before the model takes seconds to load
        _check_edge_unlocked(settings, collection, sparse)
        with console.status("loading embedding model"):
            embedder = load_embedder(settings.embedding)
        check_budget(settings.chunking, embedder.max_seq_length)
        meta = meta_for(settings, embedder.name, embedder.dim, sparse.name)
        store = open_store(settings.store, meta, collection=collection, recreate=recreate)
    except LitragError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc
    if report:
        report_fh = report.open("w", encoding="utf-8")
    try:
        stats = _run(console, settings, store, embedder, sparse, paths, report_fh)
        n_points = store.count()
    except StoreError as exc:
        console.print(f"[red]store error:[/red] {exc}")
        raise typer.Exit(EXIT_FAILURES) from exc
    finally:
        store.close()
        if report_fh:
            report_fh.close()
    _summary(console, stats, store.collection, n_points, report)
    raise typer.Exit(EXIT_FAILURES if stats.failures else EXIT_OK)


def _check_edge_unlocked(settings: Settings, collection: str | None, sparse: SparseEncoder) -> None:
    """Raise StoreLockedError when another process holds the Edge collection this run opens.

    A derived collection name hashes the model's vector size, known only once the model is
    loaded, so then every stored collection built with these settings and this model name is
    checked. A miss only delays the refusal: opening the store takes the lock for real.
    """
    if settings.store.backend != "edge":
        return
    from core.store.edge import META_FILE, check_unlocked  # the engine loads only when used

    root = settings.store.path / "edge"  # where open_store keeps Edge collections
    name = collection or settings.store.collection
    if name:
        check_unlocked(root / name)
        return
    model = settings.embedding.model
    model_names = {model, model.rstrip("/").rsplit("/", 1)[-1]}  # as the embedder names it
    for meta_file in sorted(root.glob(f"*/{META_FILE}")):
        try:
            built = StoreMeta.model_validate_json(meta_file.read_text())
        except (OSError, ValueError):
            continue  # opening the store reports an unreadable one
        ours = meta_for(settings, built.embedding_model, built.dim, sparse.name)
        if (
            built == ours
            and built.embedding_model in model_names
            and meta_file.parent.name == built.default_collection()
        ):
            check_unlocked(meta_file.parent)


def _run(
    console: Console,
    settings: Settings,
    store: VectorStore,
    embedder: Embedder,
    sparse: SparseEncoder,
    paths: list[Path],
    report_fh: IO[str] | None,
) -> IngestStats:
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    t0 = time.perf_counter()
    docs_task = progress.add_task("documents", total=None, info="")
    chunks_task = progress.add_task("chunks", total=None, info="")

    def on_report(entry: ReportEntry) -> None:
        if report_fh:
            report_fh.write(json.dumps(asdict(entry), ensure_ascii=False) + "\n")
        if entry.kind == "failure":
            where = f"{entry.file} [{entry.record}]" if entry.record else entry.file
            progress.console.print(
                f"[yellow]failed[/yellow] {escape(where)}: {escape(entry.reason)}"
            )

    last_line = [0.0]

    def on_progress(stats: IngestStats) -> None:
        elapsed = max(time.perf_counter() - t0, 1e-9)
        if not console.is_terminal and elapsed - last_line[0] >= 30:
            # progress bars do not render into a log file: a plain line every 30 s instead
            last_line[0] = elapsed
            console.print(
                f"{elapsed:6.0f} s: {stats.stored_documents} documents stored, {stats.unchanged} "
                f"unchanged, {stats.duplicates} duplicates, {stats.failures} failed; "
                f"{stats.chunks} chunks ({stats.chunks / elapsed:.1f}/s)"
            )
        progress.update(
            docs_task,
            completed=stats.stored_documents + stats.unchanged + stats.duplicates,
            info=f"{stats.stored_documents} stored · {stats.unchanged} unchanged · "
            f"{stats.duplicates} duplicates · {stats.failures} failed",
        )
        progress.update(
            chunks_task, completed=stats.chunks, info=f"{stats.chunks / elapsed:.1f} chunks/s"
        )

    pipeline = Pipeline(
        settings,
        store,
        embedder,
        sparse,
        on_report=on_report,
        on_progress=on_progress,
    )
    with progress:
        stats = pipeline.run(paths)
        progress.update(docs_task, description="building index")
        store.optimize()
        progress.update(docs_task, description="documents")
    return stats


def _summary(
    console: Console, stats: IngestStats, collection: str, n_points: int, report: Path | None
) -> None:
    out = Console()
    table = Table(title=f"litrag ingest → {collection}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for kind, n in sorted(stats.documents.items()):
        table.add_row(f"documents stored: {kind}", str(n))
    table.add_row("chunks stored", str(stats.chunks))
    table.add_row("documents changed (replaced)", str(stats.replaced_docs))
    table.add_row("skipped: unchanged", str(stats.unchanged))
    table.add_row("duplicates (not stored twice)", str(stats.duplicates))
    table.add_row("skipped files (not documents)", str(stats.skipped_files))
    table.add_row("failures", str(stats.failures), style="red" if stats.failures else None)
    table.add_row("points in collection", str(n_points))
    rate = stats.chunks / stats.seconds if stats.seconds else 0.0
    table.add_row("time", f"{stats.seconds:.1f} s ({rate:.1f} chunks/s)")
    out.print(table)
    if report:
        out.print(f"report: {report}")


def register(app: typer.Typer) -> None:
    """Add ``litrag ingest`` to the root command."""
    app.command("ingest")(ingest)
