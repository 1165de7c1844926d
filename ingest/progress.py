"""What ``litrag ingest`` shows, locally or following a server's job: progress bars (or a plain
line every 30 s in a log), failures as they happen, the ``--report`` JSON lines and the summary
table."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.jobs import JobCounts, JobEntry


class IngestView:
    """Progress on ``console`` (stderr) and report lines into ``report_fh``; a context manager
    that shows the bars while open."""

    def __init__(self, console: Console, report_fh: IO[str] | None = None) -> None:
        self.console = console
        self.report_fh = report_fh
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._t0 = time.perf_counter()
        self._last_line = 0.0
        self._docs = self.progress.add_task("documents", total=None, info="")
        self._chunks = self.progress.add_task("chunks", total=None, info="")

    def __enter__(self) -> IngestView:
        self._t0 = time.perf_counter()
        self.progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.stop()

    def phase(self, description: str) -> None:
        """Name what happens now on the documents bar (e.g. "building index")."""
        self.progress.update(self._docs, description=description)

    def on_report(self, entry: JobEntry) -> None:
        """Write the report line; show a failure at once."""
        if self.report_fh:
            self.report_fh.write(json.dumps(entry.model_dump(), ensure_ascii=False) + "\n")
        if entry.kind == "failure":
            where = f"{entry.file} [{entry.record}]" if entry.record else entry.file
            self.progress.console.print(
                f"[yellow]failed[/yellow] {escape(where)}: {escape(entry.reason)}"
            )

    def on_progress(self, counts: JobCounts) -> None:
        """Move the bars to ``counts``."""
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        if not self.console.is_terminal and elapsed - self._last_line >= 30:
            # progress bars do not render into a log file: a plain line every 30 s instead
            self._last_line = elapsed
            self.console.print(
                f"{elapsed:6.0f} s: {counts.stored_documents} documents stored, "
                f"{counts.unchanged} unchanged, {counts.duplicates} duplicates, "
                f"{counts.failures} failed; {counts.chunks} chunks "
                f"({counts.chunks / elapsed:.1f}/s)"
            )
        self.progress.update(
            self._docs,
            completed=counts.stored_documents + counts.unchanged + counts.duplicates,
            info=f"{counts.stored_documents} stored · {counts.unchanged} unchanged · "
            f"{counts.duplicates} duplicates · {counts.failures} failed",
        )
        self.progress.update(
            self._chunks, completed=counts.chunks, info=f"{counts.chunks / elapsed:.1f} chunks/s"
        )


def print_summary(
    counts: JobCounts, collection: str, n_points: int | None, report: Path | None
) -> None:
    """The summary table on stdout."""
    out = Console()
    table = Table(title=f"litrag ingest → {escape(collection)}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for kind, n in sorted(counts.documents.items()):
        table.add_row(f"documents stored: {kind}", str(n))
    table.add_row("chunks stored", str(counts.chunks))
    table.add_row("documents changed (replaced)", str(counts.replaced_docs))
    table.add_row("skipped: unchanged", str(counts.unchanged))
    table.add_row("duplicates (not stored twice)", str(counts.duplicates))
    table.add_row("skipped files (not documents)", str(counts.skipped_files))
    table.add_row("failures", str(counts.failures), style="red" if counts.failures else None)
    mentions = ", ".join(f"{n} {where}" for where, n in sorted(counts.link_mentions.items()))
    table.add_row(
        "documents naming a trial or paper",
        f"{counts.docs_with_links}" + (f" ({mentions})" if mentions else ""),
    )
    if counts.relinked:
        table.add_row("unchanged, links rewritten", str(counts.relinked))
    table.add_row("points in collection", "?" if n_points is None else str(n_points))
    rate = counts.chunks / counts.seconds if counts.seconds else 0.0
    table.add_row("time", f"{counts.seconds:.1f} s ({rate:.1f} chunks/s)")
    out.print(table)
    if report:
        out.print(f"report: {escape(str(report))}")
