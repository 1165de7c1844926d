"""``litrag serve``: run the HTTP service with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from core.cli import EXIT_USAGE, load_settings
from core.errors import ConfigError
from core.verify.nli import MODEL_DIR, load_scorer


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default service.host)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default service.port)")] = None,
) -> None:
    """Serve the web page (/), /v1/search, /v1/answer, /v1/report, /v1/check, /v1/documents
    (read; POST uploads files into an ingest job), /v1/jobs, /v1/chunks, the OpenAI-compatible
    /v1/chat/completions and /v1/models, /healthz, /readyz and /metrics (Prometheus).

    Opens the configured store (the embedded Edge store is single-process: while the service
    runs, add documents with `litrag ingest --server URL PATH...`). OpenAPI docs at /docs.
    """
    import uvicorn

    from service.app import create_app

    console = Console(stderr=True)
    settings = load_settings(console)
    if settings.answer.verifier == "nli":
        # a missing or broken verifier model is a configuration error, said before serving
        try:
            load_scorer(settings.answer.verifier_model or MODEL_DIR)
        except ConfigError as exc:
            console.print(f"[red]configuration error:[/red] {escape(str(exc))}")
            raise typer.Exit(EXIT_USAGE) from exc
    uvicorn.run(
        create_app(settings),
        host=host or settings.service.host,
        port=port or settings.service.port,
        log_config=None,
    )


def register(app: typer.Typer) -> None:
    """Add ``litrag serve`` and ``litrag check``."""
    from service.check.cli import check

    app.command("serve")(serve)
    app.command("check")(check)
