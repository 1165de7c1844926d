"""``litrag store``: ``info`` (what a collection holds and was built with) and ``migrate``
(copy an embedded Qdrant Edge collection to a Qdrant server without re-embedding, then verify).

Exit codes: 0 ok, 1 the copy failed or did not verify, 2 usage or configuration error (bad store
spec, missing collection, unreachable or mismatching target).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from core.cli import EXIT_USAGE, load_settings
from core.config import StoreSettings
from core.errors import LitragError, StoreError
from core.store import open_store
from core.store.base import StoreMeta, VectorStore
from core.store.client import Connection
from core.store.edge import META_FILE, EdgeStore
from core.store.migrate import (
    StoreSpec,
    Verification,
    copy_points,
    edge_collections,
    edge_root,
    open_edge,
    parse_spec,
    read_edge_meta,
    resolve_edge,
    verify,
)

EXIT_OK, EXIT_FAILED = 0, 1

store_app = typer.Typer(
    name="store",
    help="Inspect the vector store and migrate a collection to a Qdrant server.",
    no_args_is_help=True,
)


def _usage_error(console: Console, exc: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(str(exc))}")
    return typer.Exit(EXIT_USAGE)


def _client_settings(store: StoreSettings, url: str, api_key: str | None) -> StoreSettings:
    """The configured client settings (timeouts, TLS, batching...) aimed at ``url``."""
    key = SecretStr(api_key) if api_key else store.api_key
    return store.model_copy(
        update={"backend": "qdrant", "url": url, "api_key": key, "collection": None}
    )


# -- info ---------------------------------------------------------------------------------------
def _print_info(collection: str, backend: str, points: int, meta: StoreMeta | None) -> None:
    typer.echo(f"collection      {collection}")
    typer.echo(f"backend         {backend}")
    typer.echo(f"points          {points}")
    if meta is None:
        typer.echo("store meta      none (not created by litrag)")
        return
    typer.echo(f"embedding_model {meta.embedding_model}")
    typer.echo(f"dim             {meta.dim}")
    chunking = ", ".join(f"{k}={v}" for k, v in meta.chunking.items())
    typer.echo(f"chunking        {chunking}")
    typer.echo(f"sparse          {meta.sparse}")
    typer.echo(f"schema_version  {meta.schema_version}")
    typer.echo(f"meta key        {meta.key()}")


def _info_edge(path: Path, collection: str | None) -> None:
    if collection is None and not (path / META_FILE).is_file():
        names = edge_collections(edge_root(path))
        if len(names) > 1:  # a store folder with several collections: all of them
            for i, name in enumerate(names):
                if i:
                    typer.echo("")
                _info_edge(path, name)
            return
    root, name = resolve_edge(path, collection)
    meta = read_edge_meta(root, name)
    store = EdgeStore(root, name, meta, create=False)
    try:
        n = store.count()
    finally:
        store.close()
    _print_info(name, f"edge ({root / name})", n, meta)


def _info_client(settings: StoreSettings, collection: str | None) -> None:
    conn = Connection(settings)
    try:
        names = [collection] if collection else conn.collections()
        if collection is None:
            names = [n for n in names if conn.collection_meta(n) is not None]
        elif collection not in conn.collections():
            raise StoreError(f"no collection {collection!r} at {settings.url}")
        if not names:
            typer.echo(f"no litrag collection at {settings.url}")
        for i, name in enumerate(names):
            meta = conn.collection_meta(name)
            res = conn.call("count", conn.client.count, name, exact=True)
            if i:
                typer.echo("")
            _print_info(name, f"qdrant ({settings.url})", int(res.count), meta)
    finally:
        conn.close()


@store_app.command("info")
def info(
    store: Annotated[
        str | None,
        typer.Argument(
            help="edge:PATH\\[#COLLECTION] or URL\\[#COLLECTION]; default: the configured store "
            "(LITRAG_STORE__*)"
        ),
    ] = None,
    collection: Annotated[
        str | None, typer.Option(help="Collection (default: every litrag collection there)")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(help="Qdrant API key (default: LITRAG_STORE__API_KEY)")
    ] = None,
) -> None:
    """Print each collection's backend, point count and the settings it was built with."""
    console = Console(stderr=True)
    settings = load_settings(console)
    try:
        if store is not None:
            spec = parse_spec(store, option="store")
        elif settings.store.backend == "edge":
            spec = StoreSpec("edge", str(settings.store.path), settings.store.collection)
        elif settings.store.url:
            spec = StoreSpec("qdrant", settings.store.url, settings.store.collection)
        else:
            raise LitragError("store.backend=qdrant needs LITRAG_STORE__URL")
        name = collection or spec.collection
        if spec.backend == "edge":
            _info_edge(Path(spec.location), name)
        else:
            _info_client(_client_settings(settings.store, spec.location, api_key), name)
    except LitragError as exc:
        raise _usage_error(console, exc) from exc


# -- migrate ------------------------------------------------------------------------------------
def _print_verification(v: Verification) -> None:
    mark = "ok" if v.counts_equal else "DIFFERENT"
    typer.echo(f"  points: source {v.source_count}, target {v.target_count}  {mark}")
    for i, s in enumerate(v.samples, 1):
        what = "ok" if s.ok else "FAILED: " + "; ".join(s.problems)
        typer.echo(
            f"  sample {i}/{len(v.samples)} (point #{s.position}, {s.point_id}): payload, "
            f"vectors and {len(s.source_neighbours)} nearest neighbours {what}"
        )


@store_app.command("migrate")
def migrate(
    source: Annotated[
        str,
        typer.Option(
            "--from", help="The embedded collection: edge:PATH\\[#COLLECTION] (PATH = store.path)"
        ),
    ],
    target: Annotated[
        str,
        typer.Option(
            "--to", help="URL\\[#COLLECTION]: http(s)://HOST:6333 or :memory: (same name if none)"
        ),
    ],
    api_key: Annotated[
        str | None, typer.Option(help="Qdrant API key (default: LITRAG_STORE__API_KEY)")
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Points per read and write batch")] = 256,
    recreate: Annotated[
        bool, typer.Option("--recreate", help="Delete the target collection first")
    ] = False,
) -> None:
    """Copy an embedded Qdrant Edge collection to a Qdrant server without re-embedding.

    The target collection gets the same StoreMeta (a target built with other settings is
    refused). Then it verifies: equal point counts, and for 5 sampled points (first, last and
    between) equal payloads and vectors and the same 5 nearest neighbours on both stores.
    Exit codes: 0 verified, 1 copy or verification failed, 2 usage or configuration error.
    """
    console = Console(stderr=True)
    settings = load_settings(console)
    try:
        src_spec = parse_spec(source, option="--from")
        dst_spec = parse_spec(target, option="--to")
        if src_spec.backend != "edge":
            raise LitragError(f"--from {source!r}: the source must be edge:PATH[#COLLECTION]")
        if dst_spec.backend != "qdrant":
            raise LitragError(f"--to {target!r}: the target must be a Qdrant URL or :memory:")
    except LitragError as exc:
        raise _usage_error(console, exc) from exc

    src: VectorStore | None = None
    dst: VectorStore | None = None
    try:
        try:
            src = open_edge(src_spec)
            name = dst_spec.collection or src.collection
            dst = open_store(
                _client_settings(settings.store, dst_spec.location, api_key),
                src.meta,
                collection=name,
                recreate=recreate,
            )
            expected = src.count()
            before = dst.count()
        except LitragError as exc:
            raise _usage_error(console, exc) from exc
        dst_label = f"{dst_spec.location}#{dst.collection}"
        src_label = f"edge:{src_spec.location}#{src.collection}"
        if before:
            console.print(
                f"[yellow]note:[/yellow] {escape(dst_label)} already holds {before} points; "
                "equal ids are overwritten (use --recreate for an empty target)"
            )
        progress = Progress(
            TextColumn("[bold]copying"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("points"),
            TimeElapsedColumn(),
            console=console,
        )
        try:
            with progress:
                task = progress.add_task("copy", total=expected)
                result = copy_points(
                    src,
                    dst,
                    batch=batch,
                    expected=expected,
                    on_progress=lambda n: progress.update(task, completed=n),
                )
            verification = verify(src, dst, result.samples)
        except StoreError as exc:
            console.print(f"[red]store error:[/red] {escape(str(exc))}")
            raise typer.Exit(EXIT_FAILED) from exc
    finally:
        if dst is not None:
            dst.close()
        if src is not None:
            src.close()

    rate = result.copied / result.seconds if result.seconds else 0.0
    typer.echo(
        f"copied {result.copied} points from {src_label} to {dst_label} in "
        f"{result.seconds:.1f} s ({rate:.0f} points/s), without re-embedding"
    )
    typer.echo("verification:")
    _print_verification(verification)
    if not verification.ok:
        typer.echo("verification FAILED")
        raise typer.Exit(EXIT_FAILED)
    typer.echo("verification passed")


def register(app: typer.Typer) -> None:
    """Add ``litrag store`` (info, migrate) to the root command."""
    app.add_typer(store_app, name="store")
