"""``litrag eval verifier`` and ``litrag eval train-verifier`` (registered on ``litrag eval``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from core.cli import EXIT_USAGE, load_settings
from core.errors import LitragError


def verifier(
    dataset: Annotated[
        list[str],
        typer.Option(
            help="Labelled pairs, repeatable: a name of shared/data/eval/verify (scifact.dev, "
            "checkcovid.dev, healthver.dev, attributionbench.dev, scifact_abstract.dev, ... or "
            "scifact with --split) or a JSONL file path"
        ),
    ],
    split: Annotated[
        str | None, typer.Option(help="train or dev, when --dataset is a bare name")
    ] = None,
    method: Annotated[
        str,
        typer.Option(
            help="nli (the default verifier, as shipped), nli+terms / nli-terms (key-term check "
            "forced on / off), v1"
        ),
    ] = "nli",
    threshold: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Override the threshold (nli: P(support); v1: score)"),
    ] = None,
    model: Annotated[
        Path | None, typer.Option(help="nli: a model folder (default: the shipped one)")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many pairs")] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output folder (one dataset) or parent folder (several); default "
            "artifacts/eval/verifier-<set>-<method>-<time>"
        ),
    ] = None,
) -> None:
    """Judge the citation verifier on labelled claim-evidence pairs: precision/recall/F1 of
    'supported', balanced accuracy, contradicted pairs passed, confusion matrix, ms per pair."""
    from eval.verify_eval import METHODS, VerifierRunOptions, run_verifier_eval, verifier_markdown

    console = Console(stderr=True)
    if method not in METHODS:
        console.print(f"[red]error:[/red] --method must be one of {', '.join(METHODS)}")
        raise typer.Exit(EXIT_USAGE)
    if split is not None and split not in ("train", "dev"):
        console.print("[red]error:[/red] --split must be train or dev (test splits are held out)")
        raise typer.Exit(EXIT_USAGE)
    settings = load_settings(console, fresh=True)
    summaries = []
    for name in dataset:
        opts = VerifierRunOptions(
            dataset=name,
            split=split,
            method=method,  # type: ignore[arg-type]
            threshold=threshold,
            model=model,
            limit=limit,
        )
        target = (
            out
            if out is None or len(dataset) == 1
            else out / Path(name).name.removesuffix(".jsonl")
        )
        try:
            summary, out_dir = run_verifier_eval(settings, opts, target)
        except (LitragError, ValueError, OSError) as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(EXIT_USAGE) from exc
        summaries.append(summary)
        console.print(f"{name}: {out_dir}")
    typer.echo(verifier_markdown(summaries))


def train_verifier_cmd(
    out: Annotated[
        Path,
        typer.Option(
            help="Folder to write the model (model.onnx + tokenizer + verifier.json) into"
        ),
    ],
    train: Annotated[
        list[str], typer.Option(help="Train splits, repeatable (never a dev or test split)")
    ] = ["scifact.train", "scifact_abstract.train", "checkcovid.train"],  # noqa: B006
    dev: Annotated[
        list[str], typer.Option(help="Dev splits for choosing the epoch and the threshold")
    ] = ["scifact.dev", "scifact_abstract.dev", "checkcovid.dev"],  # noqa: B006
    epochs: Annotated[int, typer.Option(min=1)] = 3,
    lr: Annotated[float, typer.Option(min=0.0, help="Peak learning rate (AdamW)")] = 6e-5,
    batch_size: Annotated[int, typer.Option(min=2)] = 16,
    max_length: Annotated[int, typer.Option(min=32, max=512, help="Tokens per pair")] = 256,
    seed: Annotated[int, typer.Option()] = 13,
) -> None:
    """Train the 3-way citation verifier (cross-encoder from the shipped MiniLM) on the train
    splits; epoch and threshold chosen on dev; int8 ONNX for LITRAG_ANSWER__VERIFIER_MODEL=<out>."""
    from eval.verify_train import TrainOptions, train_verifier

    console = Console(stderr=True)
    opts = TrainOptions(
        train=list(train),
        dev=list(dev),
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        max_length=max_length,
        seed=seed,
    )
    try:
        manifest = train_verifier(out, opts, log=lambda m: console.print(m, highlight=False))
    except (LitragError, ValueError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc
    typer.echo(json.dumps({k: manifest[k] for k in ("best_epoch", "support_threshold", "seconds")}))
    typer.echo(f"model: {out}  (use with LITRAG_ANSWER__VERIFIER_MODEL={out})")


def add_verifier_commands(app: typer.Typer) -> None:
    """Register both commands on ``litrag eval``."""
    app.command("verifier")(verifier)
    app.command("train-verifier")(train_verifier_cmd)
