"""The ``litrag`` command. Sub-commands come from the ``litrag.commands`` entry points
(ingest, serve, eval), so core/ never imports the packages that build on it."""

from __future__ import annotations

import json
import logging
import sys
from importlib.metadata import entry_points

import typer
from rich.console import Console
from rich.markup import escape

from core.config import Settings, get_settings

#: Exit code of every sub-command for usage and configuration errors.
EXIT_USAGE = 2

app = typer.Typer(
    name="litrag",
    help="Retrieval-augmented answers over biomedical literature with verified citations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging"),
) -> None:
    """Retrieval-augmented answers over biomedical literature with verified citations.

    Settings come from LITRAG_* environment variables (nested with __) and a .env file.
    """
    configure_logging(verbose)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the traceback, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line (non-ASCII escaped, so any text is one valid line)."""
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(verbose: bool = False) -> None:
    """Stdlib logging for entry points: plain on a terminal, JSON lines otherwise."""
    level = logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    if sys.stderr.isatty():
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries that are chatty at INFO.
    for name in ("httpx", "sentence_transformers", "transformers", "pypdf"):
        logging.getLogger(name).setLevel(logging.WARNING)


def load_settings(console: Console, *, fresh: bool = False) -> Settings:
    """The settings, or exit 2 with the configuration error on ``console``.

    ``fresh`` reads the environment again instead of the process-wide cached settings.
    """
    try:
        return Settings() if fresh else get_settings()
    except ValueError as exc:
        console.print(f"[red]configuration error:[/red] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from exc


def _load_commands() -> None:
    for ep in sorted(entry_points(group="litrag.commands"), key=lambda e: e.name):
        register = ep.load()
        register(app)


def main() -> None:
    """Console-script entry point."""
    _load_commands()
    app()
