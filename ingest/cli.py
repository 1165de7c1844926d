"""``litrag ingest``: bulk ingestion with progress, a summary table and a JSON lines report,
into the local store or (``--server URL``) through a running service's upload jobs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from core.chunking import check_budget
from core.cli import EXIT_USAGE, load_settings
from core.config import Settings
from core.embedding import Embedder, load_embedder
from core.errors import LitragError, StoreError
from core.jobs import JobCounts
from core.sparse import SparseEncoder
from core.store import StoreMeta, VectorStore, meta_for, open_store
from ingest.jobs import counts_of, entry_of
from ingest.pipeline import Pipeline
from ingest.progress import IngestView, print_summary
from ingest.remote import API_KEY_ENV, ingest_remote

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
    server: Annotated[
        str | None,
        typer.Option(
            help="URL of a running `litrag serve` (e.g. http://127.0.0.1:8000): upload the files "
            "to it and follow its ingest job, instead of opening the store here"
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            help=f"The service's API key for --server (default: ${API_KEY_ENV})", show_default=False
        ),
    ] = None,
) -> None:
    """Parse, chunk, embed and store documents: JATS, PDF, ClinicalTrials.gov, MEDLINE.

    Exit codes: 0 everything ingested, 1 some inputs failed (all others stored) or the server's
    job was cancelled, 2 usage or configuration error (also: the server is unreachable or refuses
    the upload), 130 Ctrl-C while following a server job (the job goes on).
    """
    console = Console(stderr=True)
    if server is not None:
        given = [
            name
            for name, used in (
                ("--collection", collection is not None),
                ("--batch-size", batch_size is not None),
                ("--recreate", recreate),
                ("--no-optimize", not optimize),
            )
            if used
        ]
        if given:
            console.print(
                f"[red]error:[/red] {', '.join(given)} cannot be used with --server: the service "
                "ingests into its own collection with its own settings"
            )
            raise typer.Exit(EXIT_USAGE)
    code = ingest_paths(
        paths,
        server=server,
        api_key=api_key,
        report=report,
        console=console,
        collection=collection,
        batch_size=batch_size,
        recreate=recreate,
        optimize=optimize,
    )
    raise typer.Exit(code)


def ingest_paths(
    paths: list[Path],
    *,
    server: str | None = None,
    api_key: str | None = None,
    report: Path | None = None,
    console: Console | None = None,
    collection: str | None = None,
    batch_size: int | None = None,
    recreate: bool = False,
    optimize: bool = True,
) -> int:
    """Ingest ``paths`` into the local store, or upload them to the service at ``server`` (API
    key: ``api_key``, else ``$LITRAG_SERVICE__API_KEY``) and follow its job.

    Progress and errors go to ``console`` (default: stderr), the summary table to stdout, report
    lines to ``report``. Returns the exit code: 0 all ingested, 1 some inputs failed (or the
    store failed mid-run), 2 usage or configuration error. ``collection``, ``batch_size``,
    ``recreate`` and ``optimize`` apply to local ingestion only.
    """
    console = console or Console(stderr=True)
    if server is not None:
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
        return ingest_remote(paths, server=server, api_key=key, report=report, console=console)
    try:
        settings = load_settings(console)
    except typer.Exit as exc:
        return int(exc.exit_code)
    return _ingest_local(
        settings, paths, console, collection, batch_size, recreate, report, optimize
    )


def _ingest_local(
    settings: Settings,
    paths: list[Path],
    console: Console,
    collection: str | None,
    batch_size: int | None,
    recreate: bool,
    report: Path | None,
    optimize: bool,
) -> int:
    if batch_size:
        settings = settings.model_copy(
            update={"ingest": settings.ingest.model_copy(update={"batch_size": batch_size})}
        )
    missing = [p for p in paths if not p.exists()]
    if missing and len(missing) == len(paths):
        console.print(
            "[red]error:[/red] no such file or directory: " + escape(", ".join(map(str, missing)))
        )
        return EXIT_USAGE
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
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        return EXIT_USAGE
    try:
        if report:
            report_fh = report.open("w", encoding="utf-8")
        counts = _run(console, settings, store, embedder, sparse, paths, report_fh, optimize)
        n_points = store.count()
    except StoreError as exc:
        console.print(f"[red]store error:[/red] {escape(str(exc))}")
        return EXIT_FAILURES
    except OSError as exc:
        console.print(f"[red]error:[/red] cannot write the report {escape(f'{report}: {exc}')}")
        return EXIT_USAGE
    finally:
        store.close()
        if report_fh:
            report_fh.close()
    print_summary(counts, store.collection, n_points, report)
    return EXIT_FAILURES if counts.failures else EXIT_OK


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
    optimize: bool,
) -> JobCounts:
    with IngestView(console, report_fh) as view:
        pipeline = Pipeline(
            settings,
            store,
            embedder,
            sparse,
            on_report=lambda e: view.on_report(entry_of(e)),
            on_progress=lambda s: view.on_progress(counts_of(s)),
        )
        stats = pipeline.run(paths)
        if optimize:
            view.phase("building index")
            store.optimize()
            view.phase("documents")
    return counts_of(stats)


def register(app: typer.Typer) -> None:
    """Add ``litrag ingest`` to the root command."""
    app.command("ingest")(ingest)
