"""``litrag eval``: retrieval evaluation runs, comparison charts, and answer/citation checks.

- ``litrag eval retrieval --dataset scifact --mode hybrid [--fusion rrf|weighted] [--alpha A]
  [--split test|train|train-fit|train-dev] [--out DIR] [--compare OTHER]``
- ``litrag eval finetune --out models/NAME [--train scifact:train-fit ...]``: fine-tune the
  embedder on training queries (see ``eval/finetune.py``).
- ``litrag eval chart SUMMARY... --out chart.png``
- ``litrag eval answers --dataset litqa2|pubmedqa [--url http://127.0.0.1:8000] [--limit N]``
- ``litrag eval verifier --dataset scifact.dev [--method nli|nli+terms|v1]``: the citation
  verifier on labelled pairs; ``litrag eval train-verifier --out DIR`` trains it (see
  ``eval/verify_train.py``).
- ``litrag eval export pubmedqa --out DIR``: PubMedQA abstracts as MEDLINE XML for
  ``litrag ingest``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from core.cli import EXIT_USAGE, load_settings
from core.errors import LitragError
from eval.verify_cli import add_verifier_commands

eval_app = typer.Typer(
    name="eval",
    help="Evaluate retrieval (SciFact, PubMedQA, BioASQ) and answers (LitQA2, PubMedQA).",
    no_args_is_help=True,
)


@eval_app.command("retrieval")
def retrieval(
    dataset: Annotated[
        str,
        typer.Option(help="scifact, pubmedqa, bioasq (shared data) or a BEIR/PubMedQA/BioASQ dir"),
    ],
    mode: Annotated[
        str, typer.Option(help="dense, sparse, hybrid (RRF in the store) or fusion (weighted)")
    ] = "hybrid",
    split: Annotated[
        str,
        typer.Option(
            help="qrels split: test, train (BEIR, PubMedQA); 7b..11b (BioASQ); <split>-fit / "
            "<split>-dev = 80 % / 20 % of its queries (train on fit, choose on dev)"
        ),
    ] = "test",
    out: Annotated[
        Path | None,
        typer.Option(help="Output folder (default artifacts/eval/<set>-<split>-<mode>-<time>)"),
    ] = None,
    compare: Annotated[
        Path | None,
        typer.Option(help="Another run's summary.json or folder: print deltas and a paired test"),
    ] = None,
    top_k: Annotated[int, typer.Option(min=1, help="Documents ranked per query")] = 100,
    fusion: Annotated[
        str | None,
        typer.Option(
            help="hybrid: 'rrf' or 'weighted' store fusion (default LITRAG_RETRIEVAL__FUSION)"
        ),
    ] = None,
    rrf_k: Annotated[
        int | None,
        typer.Option(min=1, help="RRF constant of hybrid mode (default LITRAG_RETRIEVAL__RRF_K)"),
    ] = None,
    alpha: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Weight of dense (1 - alpha: sparse) for mode fusion and weighted hybrid "
            "(default LITRAG_RETRIEVAL__DENSE_WEIGHT)",
        ),
    ] = None,
    reindex: Annotated[bool, typer.Option("--reindex", help="Rebuild the index first")] = False,
    judged_docs_only: Annotated[
        bool,
        typer.Option(
            "--judged-docs-only",
            help="Index only the documents judged for the split's queries (a small, easier "
            "subset, e.g. BioASQ 7b)",
        ),
    ] = False,
) -> None:
    """Index the set's corpus once (reused while unchanged), run every query, write metrics."""
    from eval.datasets import load
    from eval.runner import (
        MODES,
        RunOptions,
        attach_compare,
        compare_markdown,
        judged_only,
        load_result,
        make_progress,
        run_eval,
    )
    from eval.runner import compare as compare_runs

    console = Console(stderr=True)
    if mode not in MODES:
        console.print(f"[red]error:[/red] --mode must be one of {', '.join(MODES)}")
        raise typer.Exit(EXIT_USAGE)
    settings = load_settings(console, fresh=True)  # LITRAG_* may have changed
    fusion = fusion or settings.retrieval.fusion
    if fusion not in ("rrf", "weighted"):
        console.print("[red]error:[/red] --fusion must be rrf or weighted")
        raise typer.Exit(EXIT_USAGE)
    options = RunOptions(
        mode=mode,
        top_k=top_k,
        rrf_k=rrf_k or settings.retrieval.rrf_k,
        alpha=settings.retrieval.dense_weight if alpha is None else alpha,
        fusion=fusion,  # type: ignore[arg-type]
    )
    other = None
    try:
        if compare is not None:
            other = load_result(compare)
        eval_set = load(dataset, split)
        if judged_docs_only:
            eval_set = judged_only(eval_set)
        with make_progress(console) as progress:
            result = run_eval(
                eval_set,
                settings,
                options,
                split=split,
                out_dir=out,
                progress=progress,
                reindex=reindex,
            )
        cmp = compare_runs(result, other) if other is not None else None
        if cmp is not None:
            attach_compare(result, cmp)
    except (LitragError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc

    index = result.summary["index"]
    console.print(
        f"index {index['collection']}: "
        + ("reused" if index["reused"] else f"built in {index['seconds']:.0f} s")
        + (f" from the dense vectors of {index['dense_from']}" if index.get("dense_from") else "")
        + f" ({index['n_points']} chunks)"
    )
    m = result.summary["manifest"]
    table = Table(title=f"{m['dataset']} {m['split']} · {m['label']} · {m['n_queries']} queries")
    for key in result.metrics:
        table.add_column(key, justify="right")
    table.add_row(*(f"{v:.4f}" for v in result.metrics.values()))
    out_console = Console()
    out_console.print(table)
    if cmp is not None:
        typer.echo("\n".join(compare_markdown(cmp)))
    out_console.print(f"results: {result.out_dir}", markup=False, highlight=False)


@eval_app.command("chart")
def chart(
    summaries: Annotated[
        list[Path], typer.Argument(help="summary.json files or run folders to compare")
    ],
    out: Annotated[Path, typer.Option(help="PNG file to write")] = Path("eval-chart.png"),
    metric: Annotated[str, typer.Option(help="Metric to plot")] = "ndcg@10",
    references: Annotated[
        bool, typer.Option(help="Add published reference points (SciFact)")
    ] = True,
) -> None:
    """Bar chart of several runs (plus published reference points) and a markdown table."""
    from eval.report import comparison_table, load_summaries, plot_comparison

    console = Console(stderr=True)
    try:
        runs = load_summaries(summaries)
        plot_comparison(runs, out, metric=metric, references=references)
    except (ValueError, KeyError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc
    typer.echo(comparison_table(runs))
    console.print(f"chart: {out}")


@eval_app.command("answers")
def answers(
    dataset: Annotated[str, typer.Option(help="litqa2 or pubmedqa")],
    url: Annotated[str, typer.Option(help="Base URL of a running `litrag serve`")] = (
        "http://127.0.0.1:8000"
    ),
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many questions")] = None,
    split: Annotated[str, typer.Option(help="pubmedqa: test or train")] = "test",
    api_key: Annotated[
        str | None, typer.Option(envvar="LITRAG_EVAL_API_KEY", help="Service API key, if any")
    ] = None,
    generator: Annotated[str, typer.Option(help="auto, extractive or llm")] = "auto",
    timeout: Annotated[float, typer.Option(min=1.0, help="Seconds per request")] = 300.0,
    all_questions: Annotated[
        bool,
        typer.Option("--all", help="litqa2: every question, not only those with a source PDF"),
    ] = False,
    out: Annotated[Path | None, typer.Option(help="Output folder")] = None,
    compare: Annotated[
        Path | None,
        typer.Option(help="Another run's folder: count sentences whose verdict changed"),
    ] = None,
) -> None:
    """Ask the service each question; check citations, sources and (with an LLM) answers."""
    from eval.answers import AnswerEvalOptions, answers_markdown, run_answer_eval

    console = Console(stderr=True)
    if dataset not in ("litqa2", "pubmedqa"):
        console.print("[red]error:[/red] --dataset must be litqa2 or pubmedqa")
        raise typer.Exit(EXIT_USAGE)
    if generator not in ("auto", "extractive", "llm"):
        console.print("[red]error:[/red] --generator must be auto, extractive or llm")
        raise typer.Exit(EXIT_USAGE)
    options = AnswerEvalOptions(
        dataset=dataset,  # type: ignore[arg-type]
        url=url,
        limit=limit,
        split=split,
        api_key=api_key,
        generator=generator,  # type: ignore[arg-type]
        timeout_s=timeout,
        only_with_pdf=not all_questions,
    )
    try:
        summary, out_dir = run_answer_eval(options, out_dir=out, console=console)
    except (LitragError, ValueError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc
    typer.echo(answers_markdown(summary))
    console.print(f"results: {out_dir}")
    if compare is not None:
        from eval.answers import compare_verdicts

        try:
            diff = compare_verdicts(out_dir, compare)
        except (OSError, ValueError, KeyError) as exc:
            console.print(f"[red]error:[/red] --compare {compare}: {exc}")
            raise typer.Exit(EXIT_USAGE) from exc
        (out_dir / "verdict_changes.json").write_text(json.dumps(diff, indent=2) + "\n")
        typer.echo(
            f"verdicts changed versus {compare}: {diff['changed']} of "
            f"{diff['compared_sentences']} sentences {diff['changes']}"
        )
    if summary["fabricated_citations"] or summary["fabricated_urls"]:
        raise typer.Exit(1)


@eval_app.command("finetune")
def finetune_cmd(
    out: Annotated[Path, typer.Option(help="Folder to write the fine-tuned model into")],
    train: Annotated[
        list[str],
        typer.Option(
            help="DATASET:SPLIT to train on, repeatable: scifact:train-fit, scifact:train, "
            "pubmedqa:train, bioasq:8b ... (never a test or -dev split)"
        ),
    ] = ["scifact:train-fit"],  # noqa: B006 - typer reads the default, never mutates it
    base_model: Annotated[
        str | None, typer.Option(help="Model to start from (default: LITRAG_EMBEDDING__MODEL)")
    ] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the triples")] = 2,
    batch_size: Annotated[int, typer.Option(min=2, help="Triples per step")] = 32,
    lr: Annotated[float, typer.Option(min=0.0, help="Peak learning rate (AdamW)")] = 2e-5,
    seed: Annotated[int, typer.Option(help="Shuffling / negative sampling seed")] = 13,
) -> None:
    """Fine-tune the embedder on training queries (BM25-mined hard negatives); saves a model
    folder to use with LITRAG_EMBEDDING__MODEL=<out>."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from core.embedding import load_embedder
    from eval.datasets import load
    from eval.finetune import FinetuneOptions, finetune, mine_triples

    console = Console(stderr=True)
    settings = load_settings(console, fresh=True)  # LITRAG_* may have changed
    options = FinetuneOptions(
        epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, datasets=list(train)
    )
    try:
        embedder = load_embedder(settings.embedding)
        triples = []
        for spec in train:
            name, sep, split = spec.partition(":")
            if not sep or not split:
                raise ValueError(f"--train {spec!r}: expected DATASET:SPLIT")
            eval_set = load(name, split)
            mined = mine_triples(eval_set, settings, embedder.count_tokens, options)
            console.print(f"{spec}: {len(eval_set.queries)} queries -> {len(mined)} triples")
            triples.extend(mined)
        with Progress(
            TextColumn("training"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} steps · loss {task.fields[loss]:.3f}"),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("train", total=None, loss=0.0)

            def on_step(step: int, total: int, loss: float) -> None:
                progress.update(task, completed=step, total=total, loss=loss)
                if not console.is_terminal and (step % 10 == 0 or step == total):
                    # off a terminal the bar is silent: plain lines keep logs informative
                    console.print(f"step {step}/{total} loss {loss:.3f}", highlight=False)

            manifest = finetune(
                base_model or settings.embedding.model, triples, out, options, on_step
            )
    except (LitragError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc
    console.print(
        f"{manifest['triples']} triples, {manifest['steps']} steps, {manifest['seconds']:.0f} s, "
        f"mean loss per epoch {manifest['mean_loss_per_epoch']}"
    )
    typer.echo(f"model: {out}  (use with LITRAG_EMBEDDING__MODEL={out})")


@eval_app.command("export")
def export(
    dataset: Annotated[str, typer.Argument(help="pubmedqa")],
    out: Annotated[Path, typer.Option(help="Folder to write the MEDLINE XML file into")],
) -> None:
    """Write an evaluation corpus in a format `litrag ingest` reads (PubMedQA -> MEDLINE XML)."""
    from eval.answers import export_pubmedqa_medline

    console = Console(stderr=True)
    if dataset != "pubmedqa":
        console.print("[red]error:[/red] only pubmedqa can be exported")
        raise typer.Exit(EXIT_USAGE)
    path, n = export_pubmedqa_medline(out)
    console.print(
        f"wrote {n} abstracts to {path}; ingest with: litrag ingest {path}", soft_wrap=True
    )


add_verifier_commands(eval_app)


def register(app: typer.Typer) -> None:
    """Add ``litrag eval ...`` to the root command."""
    app.add_typer(eval_app, name="eval")
