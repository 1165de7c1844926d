"""``litrag check FILE.md|-``: check a report written elsewhere against the configured store.

Exit codes: 0 when no claim is contradicted, 1 when one is, 2 for usage or configuration errors
(no such file, an empty text, a store that cannot be opened). A text without claim sentences
is checked and has none (a note on stderr says so).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape

from core.cli import EXIT_USAGE, load_settings
from core.errors import LitragError
from service.check.models import DEFAULT_CHECK_TOP_K, MAX_CHECK_CHARS, MAX_CHECK_TOP_K

EXIT_CONTRADICTED = 1


def _read(source: str, console: Console) -> str:
    try:
        if source == "-":
            return sys.stdin.read()
        return Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        console.print(f"[red]cannot read {escape(source)}:[/red] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from exc


def check(
    source: Annotated[str, typer.Argument(help="The report (Markdown or text); '-' = stdin")],
    output_format: Annotated[
        Literal["markdown", "json"],
        typer.Option("--format", help="markdown (the report with verdicts) or json"),
    ] = "markdown",
    top_k: Annotated[
        int,
        typer.Option(min=1, max=MAX_CHECK_TOP_K, help="Passages retrieved and checked per claim"),
    ] = DEFAULT_CHECK_TOP_K,
) -> None:
    """Check every claim sentence of a report against the indexed literature: supported by,
    contradicted by, or no evidence in the indexed corpus; resolve its NCT numbers, PMIDs,
    PMCIDs, DOIs and URLs against the store. Exit 1 when a claim is contradicted."""
    from service.check.checker import ReportChecker
    from service.check.render import render_markdown
    from service.state import State

    console = Console(stderr=True)
    text = _read(source, console)
    if not text.strip():
        console.print("[red]the report is empty[/red]")
        raise typer.Exit(EXIT_USAGE)
    if len(text) > MAX_CHECK_CHARS:
        console.print(
            f"[red]the report is {len(text)} characters; the limit is {MAX_CHECK_CHARS}[/red]"
        )
        raise typer.Exit(EXIT_USAGE)
    settings = load_settings(console)
    state = State(settings=settings)
    try:
        state.open()
        if state.engine is None:
            console.print(f"[red]store unavailable:[/red] {escape(state.store_error or '')}")
            raise typer.Exit(EXIT_USAGE)
        from core.verify import make_verifier

        checker = ReportChecker(
            state.engine.retriever, make_verifier(settings.answer, state.engine.embedder)
        )
        checked = checker.check(text, top_k)
    except LitragError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from exc
    finally:
        state.close()
    if not checked.result.claims:
        console.print(
            "[yellow]no claim sentences found[/yellow] (headings, questions, metadata lines, "
            "lead-ins and sentences of fewer than four words are skipped)"
        )
    if output_format == "json":
        sys.stdout.write(checked.result.model_dump_json(indent=2) + "\n")
    else:
        sys.stdout.write(render_markdown(checked) + "\n")
    if checked.result.summary.contradicted:
        raise typer.Exit(EXIT_CONTRADICTED)
