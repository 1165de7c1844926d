"""``litrag fetch pmc|pubmed|trials``: download documents into OUT_DIR, incrementally.

Exit codes: 0 every listed document is in OUT_DIR (or skipped with a reason, e.g. not open
access), 1 some documents failed or the run stopped on a network or API error (run the same
command again to resume), 2 usage or configuration error (also: OUT_DIR in use).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from core.cli import EXIT_USAGE, load_settings
from core.config import FetchSettings
from core.errors import LitragError
from ingest.cli import ingest_paths
from ingest.fetch.base import Job, make_client, parse_since
from ingest.fetch.eutils import run_ids
from ingest.fetch.manifest import MANIFEST_NAME, Manifest, ManifestError, Record
from ingest.fetch.pmc import PmcSource
from ingest.fetch.pubmed import PubmedSource
from ingest.fetch.trials import normalise_status, run_trials

EXIT_OK, EXIT_FAILURES = 0, 1

fetch_app = typer.Typer(
    name="fetch",
    help="Download documents from PubMed Central, PubMed or ClinicalTrials.gov into a folder. "
    f"Incremental and resumable: OUT_DIR/{MANIFEST_NAME} records what was fetched; run the same "
    "command again to fetch only what is new or changed since the last finished run, or to "
    "finish an interrupted run. --full lists the query completely and marks documents it no "
    "longer returns as gone (--prune moves their files into OUT_DIR/.gone/).",
    no_args_is_help=True,
)

OutDir = Annotated[Path, typer.Argument(help="Folder the documents and the manifest go to")]
Query = Annotated[str, typer.Option("--query", "-q", help="Search query, in the source's syntax")]
MaxRecords = Annotated[
    int | None,
    typer.Option("--max", min=1, help="Stop after N documents in this run; the next run continues"),
]
Full = Annotated[
    bool,
    typer.Option(
        "--full",
        help="List the query completely instead of only what changed since the last run; "
        "documents it no longer returns are recorded as gone and reported (files are kept)",
    ),
]
Prune = Annotated[
    bool,
    typer.Option(
        "--prune", help="With --full: move the files of gone documents into OUT_DIR/.gone/"
    ),
]
Ingest = Annotated[
    bool,
    typer.Option("--ingest", help="Ingest the new and changed files when the fetch is done"),
]
Server = Annotated[
    str | None,
    typer.Option(help="With --ingest: upload to the litrag service at this URL instead"),
]
ServerKey = Annotated[
    str | None,
    typer.Option("--api-key", help="With --server: the service's API key"),
]
Report = Annotated[
    Path | None, typer.Option(help="With --ingest: write the ingest report (JSON lines) here")
]


def _parse_since(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return parse_since(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None


@fetch_app.command("pmc")
def pmc(
    out_dir: OutDir,
    query: Query,
    since: Annotated[
        str | None,
        typer.Option(help="Only articles added or modified on or after this date (YYYY-MM-DD)"),
    ] = None,
    max_records: MaxRecords = None,
    full: Full = False,
    prune: Prune = False,
    ingest: Ingest = False,
    server: Server = None,
    api_key: ServerKey = None,
    report: Report = None,
) -> None:
    """Open-access full text (JATS) from PubMed Central: esearch on the OA subset + efetch.

    One PMC<id>.nxml per article; articles that are not open access are skipped with the reason.
    A rerun lists only articles added or modified since the last finished run began (a day
    early); --full also lists the query completely, fetches what is missing from OUT_DIR and
    records articles it no longer returns as gone.
    """
    source = PmcSource()
    _main(
        out_dir,
        lambda job: run_ids(job, source, query, _parse_since(since), max_records, full=full),
        ingest,
        server,
        api_key,
        report,
        full=full,
        prune=prune,
    )


@fetch_app.command("pubmed")
def pubmed(
    out_dir: OutDir,
    query: Query,
    since: Annotated[
        str | None,
        typer.Option(help="Only citations added or modified on or after this date (YYYY-MM-DD)"),
    ] = None,
    max_records: MaxRecords = None,
    full: Full = False,
    prune: Prune = False,
    ingest: Ingest = False,
    server: Server = None,
    api_key: ServerKey = None,
    report: Report = None,
) -> None:
    """MEDLINE citations from PubMed: esearch + efetch. One PMID<id>.xml per citation.

    A rerun lists only citations added or modified since the last finished run began (a day
    early); --full also lists the query completely, fetches what is missing from OUT_DIR and
    records citations it no longer returns as gone.
    """
    source = PubmedSource()
    _main(
        out_dir,
        lambda job: run_ids(job, source, query, _parse_since(since), max_records, full=full),
        ingest,
        server,
        api_key,
        report,
        full=full,
        prune=prune,
    )


@fetch_app.command("trials")
def trials(
    out_dir: OutDir,
    query: Query,
    status: Annotated[
        list[str] | None,
        typer.Option(help="Overall status filter, repeatable (e.g. RECRUITING, COMPLETED)"),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Only studies whose last update was posted on or after this date (YYYY-MM-DD)"
        ),
    ] = None,
    max_records: MaxRecords = None,
    full: Full = False,
    prune: Prune = False,
    ingest: Ingest = False,
    server: Server = None,
    api_key: ServerKey = None,
    report: Report = None,
) -> None:
    """Studies from the ClinicalTrials.gov API v2 (query.term, pageToken paging).

    One NCT<id>.json per study. A rerun asks only for studies whose last update was posted since
    the last finished run began (a day early) and writes those whose record changed; --full
    reads the complete listing and records studies it no longer returns as gone.
    """
    try:
        statuses = [normalise_status(s) for s in status or []]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--status") from None
    _main(
        out_dir,
        lambda job: run_trials(job, query, statuses, _parse_since(since), max_records, full=full),
        ingest,
        server,
        api_key,
        report,
        full=full,
        prune=prune,
    )


def _main(
    out_dir: Path,
    body: Callable[[Job], None],
    ingest: bool,
    server: str | None,
    api_key: str | None,
    report: Path | None,
    *,
    full: bool,
    prune: bool,
) -> None:
    console = Console(stderr=True, soft_wrap=True)  # messages stay one line in logs
    if not ingest and (server or api_key or report):
        console.print("[red]error:[/red] --server, --api-key and --report need --ingest")
        raise typer.Exit(EXIT_USAGE)
    if prune and not full:
        console.print("[red]error:[/red] --prune needs --full (a complete listing)")
        raise typer.Exit(EXIT_USAGE)
    settings = load_settings(console, fresh=True).fetch
    try:
        manifest = Manifest.open(out_dir)
    except ManifestError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from exc
    code = EXIT_OK
    t0 = time.perf_counter()
    with manifest, make_client(settings) as client:
        job = Job(settings, client, manifest, on_record=lambda r: _show(console, r), prune=prune)
        try:
            body(job)
        except LitragError as exc:
            console.print(f"[red]fetch error:[/red] {escape(str(exc))}")
            console.print(
                "What was fetched before the error is kept; run the same command again to resume."
            )
            code = EXIT_FAILURES
        except KeyboardInterrupt:
            console.print("interrupted; run the same command again to resume")
            code = EXIT_FAILURES
        for warning in job.stats.warnings:
            console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
        if job.stats.counts["failed"]:
            code = EXIT_FAILURES
        _summary(job, settings, out_dir, time.perf_counter() - t0)
    if ingest:
        code = max(code, _ingest(console, job, server, api_key, report))
    raise typer.Exit(code)


def _show(console: Console, record: Record) -> None:
    if record.status == "failed":
        console.print(f"[red]failed[/red] {record.id}: {escape(record.reason or '')}")
    elif record.status == "skipped":
        console.print(f"[yellow]skipped[/yellow] {record.id}: {escape(record.reason or '')}")
    elif record.status == "gone":
        console.print(f"[yellow]gone[/yellow] {record.id}: {escape(record.reason or '')}")


def _summary(job: Job, settings: FetchSettings, out_dir: Path, seconds: float) -> None:
    stats = job.stats
    table = Table(title=f"litrag fetch → {out_dir}")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("search", stats.search or "-")
    table.add_row(
        "listed by the search" + (" (resumed run)" if stats.resumed else ""), str(stats.listed)
    )
    table.add_row("new", str(stats.counts["fetched"]))
    table.add_row("changed (rewritten)", str(stats.counts["updated"]))
    table.add_row("unchanged", str(stats.counts["unchanged"]))
    table.add_row("skipped (with reason)", str(stats.counts["skipped"]))
    failed = stats.counts["failed"]
    table.add_row("failed", str(failed), style="red" if failed else None)
    gone = stats.counts["gone"]
    table.add_row("gone (no longer listed)", str(gone), style="yellow" if gone else None)
    table.add_row("HTTP requests", str(job.client.requests))
    table.add_row("time", f"{seconds:.1f} s")
    table.add_row("run", "finished" if stats.finished else "not finished: run again to resume")
    if stats.compacted:
        table.add_row("manifest compacted", "{} → {} lines".format(*stats.compacted))
    Console().print(table)


def _ingest(
    console: Console, job: Job, server: str | None, api_key: str | None, report: Path | None
) -> int:
    files = list(dict.fromkeys(job.stats.written))
    if not files:
        console.print("--ingest: no new or changed files to ingest")
        return EXIT_OK
    console.print(f"--ingest: {len(files)} new or changed files")
    return ingest_paths(files, server=server, api_key=api_key, report=report, console=console)


def register(app: typer.Typer) -> None:
    """Add ``litrag fetch`` to the root command."""
    app.add_typer(fetch_app, name="fetch")
