"""Duplicate detection quality on the labelled dev pairs (issue 5), side by side.

    .venv/bin/python bench/dedup_quality.py [--data ../shared/data/dedup_dev.jsonl] [--folds 5 --repeats 5]
        [--precision auto]

Embeddings come from ``SentenceTransformerEmbedder(--model, precision=--precision)``; the default
``auto`` is the app's default setting (bf16 where the CPU runs it natively). The shipped scorer was
fitted on fp32 cosines; ``--precision fp32`` reproduces that.

Scorers, each judged on precision / recall / F1 of the duplicate class, overall and per language:

- our scorer (``ml.dedup.fit``), **cross-validated**: its ``.cross_validation`` figures (weights and
  threshold refitted on each training fold, judged on the held-out fold). The shipped scorer's
  figures on the same pairs are shown in a separate row labelled in-sample: it was fitted on them.
- the trigram rule Decidim used: ``GREATEST(similarity(title), similarity(body)) >= 0.25`` with
  pg_trgm's tokenisation (``ml.trigram``). The dev texts have no title, so title = the text up to
  the first ':' or '.' or ' - ' (whichever comes first; the whole text if none) and body = the
  whole text.
- plain MiniLM cosine with one threshold: the in-sample optimum (picked on the very pairs it is
  judged on, so optimistic) and the threshold chosen by the same cross-validation as our scorer.

Plus retrieval recall@5 (``ml.evaluation.retrieval_recall``): for each duplicate pair, is ``a``
among the 5 nearest of ``b`` when the corpus is every distinct ``a`` of the file.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
from _mlcommon import (
    DEDUP_DEV,
    command_line,
    log,
    machine_info,
    machine_line,
    now,
    print_table,
    write_results,
)

from ml import dedup, trigram
from ml.dedup import Pair, best_threshold, scores
from ml.embedding import DEFAULT_MODEL, PRECISIONS, SentenceTransformerEmbedder
from ml.evaluation import RETRIEVAL_K, pair_cosines, retrieval_recall

TRIGRAM_THRESHOLD = 0.25  # Decidim's similarity threshold for "similar proposals"
TARGETS = {"f1_all": 0.85, "f1_fr": 0.80, "recall_at_5": 0.95}
TITLE_DEFINITION = "title = text up to the first ':' or '.' or ' - ' (whole text if none); body = whole text"
_TITLE_END = re.compile(r":|\.| - ")


def title_of(text: str) -> str:
    match = _TITLE_END.search(text)
    title = text[: match.start()].strip() if match else text
    return title or text


def trigram_score(a: str, b: str) -> float:
    """GREATEST(similarity(title), similarity(body)) as Decidim's query computes it."""
    return max(trigram.similarity(title_of(a), title_of(b)), trigram.similarity(a, b))


def by_group(predicted: Sequence[bool], pairs: Sequence[Pair]) -> dict[str, dict[str, Any]]:
    truth = [p.duplicate for p in pairs]
    out = {"all": asdict(scores(list(predicted), truth))}
    for lang in sorted({p.lang for p in pairs}):
        idx = [i for i, p in enumerate(pairs) if p.lang == lang]
        out[lang] = asdict(scores([predicted[i] for i in idx], [truth[i] for i in idx]))
    return out


def cross_validated_threshold(
    values: Sequence[float], pairs: Sequence[Pair], folds: int, repeats: int, seed: int
) -> dict[str, Any]:
    """A single threshold on ``values``, chosen on each training fold exactly as ``ml.dedup.fit`` does."""
    from sklearn.model_selection import StratifiedKFold

    x = np.asarray(values, dtype=np.float64)
    y = np.array([p.duplicate for p in pairs], dtype=bool)
    strata = [f"{p.lang}:{p.duplicate}" for p in pairs]
    runs, thresholds = [], []
    for repeat in range(repeats):
        predicted = np.zeros(len(pairs), dtype=bool)
        split = StratifiedKFold(folds, shuffle=True, random_state=seed + repeat).split(
            x.reshape(-1, 1), strata
        )
        for train, test in split:
            threshold = best_threshold(list(x[train]), list(y[train]))
            thresholds.append(threshold)
            predicted[test] = x[test] >= threshold
        runs.append(by_group(list(predicted), pairs))
    summary: dict[str, Any] = {
        group: {k: float(np.mean([r[group][k] for r in runs])) for k in ("precision", "recall", "f1")}
        | {"pairs": runs[0][group]["pairs"]}
        for group in runs[0]
    }
    summary["thresholds"] = {
        "min": min(thresholds),
        "max": max(thresholds),
        "mean": float(np.mean(thresholds)),
    }
    return summary


def retrieval_detail(
    corpus_score: Callable[[str, list[str]], list[float]], pairs: Sequence[Pair], k: int
) -> dict[str, float]:
    """Recall@k per language for any scorer of one query against the corpus of distinct ``a`` texts."""
    corpus = sorted({p.a for p in pairs})
    found: dict[str, list[bool]] = {}
    for p in pairs:
        if not p.duplicate:
            continue
        ranked = np.argsort(-np.asarray(corpus_score(p.b, corpus)), kind="stable")[:k]
        hit = corpus.index(p.a) in set(ranked.tolist())
        found.setdefault("all", []).append(hit)
        found.setdefault(p.lang, []).append(hit)
    return {g: sum(v) / len(v) for g, v in sorted(found.items())}


def verdict(value: float, target: float) -> str:
    if value >= target:
        return "met"
    return f"NOT met ({target - value:.3f} short)"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(DEDUP_DEV))
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="embedder precision (the app's default setting: auto)")  # fmt: skip
    args = parser.parse_args()

    started = now()
    results: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "command": command_line(),
        "machine": machine_info(),
        "data": args.data,
        "model": args.model,
        "title_definition": TITLE_DEFINITION,
        "targets": TARGETS,
    }
    pairs = dedup.read_pairs(args.data)
    log(f"{len(pairs)} pairs; loading {args.model}")
    embedder = SentenceTransformerEmbedder(args.model, precision=args.precision)
    results["precision"] = f"{args.precision} (resolves to {embedder.precision} here)"
    t0 = time.perf_counter()
    cosines = pair_cosines(embedder, pairs)
    results["embed_seconds"] = round(time.perf_counter() - t0, 2)
    truth = [p.duplicate for p in pairs]

    rows: dict[str, dict[str, Any]] = {}
    # (a) our scorer, cross-validated (the headline), and the shipped one in-sample (labelled as such).
    fitted = dedup.fit(pairs, cosines, args.model, folds=args.folds, repeats=args.repeats, seed=args.seed)
    cv = {g: v for g, v in fitted.cross_validation.items() if isinstance(v, dict)}
    rows["ours, cross-validated"] = cv
    results["ours_cv_method"] = fitted.cross_validation.get("method")
    results["ours_refit_on_all"] = {
        "weights": fitted.weights,
        "bias": fitted.bias,
        "threshold": fitted.threshold,
    }
    shipped_path = dedup.default_scorer_path(args.model)
    if shipped_path.exists():
        shipped = dedup.DuplicateScorer.load(shipped_path)
        predicted = [shipped.judge(p.a, p.b, c).duplicate for p, c in zip(pairs, cosines, strict=True)]
        rows["ours, shipped scorer IN-SAMPLE (fitted on these pairs)"] = by_group(predicted, pairs)
        results["shipped_scorer"] = {"path": str(shipped_path.relative_to(shipped_path.parents[2])),
                                     "threshold": shipped.threshold}  # fmt: skip

    # (b) Decidim's trigram rule.
    tri = [trigram_score(p.a, p.b) for p in pairs]
    rows[f"trigram GREATEST(title, body) >= {TRIGRAM_THRESHOLD}"] = by_group(
        [s >= TRIGRAM_THRESHOLD for s in tri], pairs
    )
    tri_best = best_threshold(tri, truth)
    rows[f"trigram, best threshold {tri_best:.3f} (IN-SAMPLE)"] = by_group(
        [s >= tri_best for s in tri], pairs
    )

    # (c) plain cosine.
    cos_best = best_threshold(cosines, truth)
    rows[f"cosine, best threshold {cos_best:.3f} (IN-SAMPLE)"] = by_group(
        [c >= cos_best for c in cosines], pairs
    )
    cos_cv = cross_validated_threshold(cosines, pairs, args.folds, args.repeats, args.seed)
    rows["cosine, threshold cross-validated"] = {g: v for g, v in cos_cv.items() if g != "thresholds"}
    results["cosine_cv_thresholds"] = cos_cv["thresholds"]
    results["quality"] = rows

    # Retrieval recall@5: the library's figure, with a per-language breakdown and the trigram baseline.
    recall = retrieval_recall(embedder, pairs, RETRIEVAL_K)
    corpus_vectors: dict[str, np.ndarray] = {}

    def cosine_to_corpus(query: str, corpus: list[str]) -> list[float]:
        if "m" not in corpus_vectors:
            corpus_vectors["m"] = embedder.encode(corpus)
        return (corpus_vectors["m"] @ embedder.encode([query])[0]).tolist()

    minilm_detail = retrieval_detail(cosine_to_corpus, pairs, RETRIEVAL_K)
    trigram_detail = retrieval_detail(
        lambda q, corpus: [trigram_score(c, q) for c in corpus], pairs, RETRIEVAL_K
    )
    results["retrieval_recall_at_5"] = {
        "library": recall,
        "minilm_by_lang": minilm_detail,
        "trigram_by_lang": trigram_detail,
        "corpus": len({p.a for p in pairs}),
        "queries": sum(truth),
    }

    # ---- report ----------------------------------------------------------------------------------
    groups = ["all", "en", "fr", "en-fr"]
    print()
    print(f"Duplicate detection quality, {results['started_at']} ({results['command']})")
    print(machine_line(results["machine"]) + f"; embedder precision {results['precision']}")
    counts = {g: rows["ours, cross-validated"][g]["pairs"] for g in groups}
    print(f"data: {args.data}: {len(pairs)} pairs ({', '.join(f'{g} {n}' for g, n in counts.items())})")
    print(f"trigram rule: {TITLE_DEFINITION}")
    print(f"cross-validation: {results['ours_cv_method']} (same splits for the cosine threshold)")
    print()
    header = ["scorer", *[f"{g} P / R / F1" for g in groups]]
    table = []
    for name, figures in rows.items():
        cells = [name]
        for g in groups:
            f = figures[g]
            cells.append(f"{f['precision']:.2f} / {f['recall']:.2f} / {f['f1']:.3f}")
        table.append(cells)
    print_table(header, table)
    print()
    ours = rows["ours, cross-validated"]
    print_table(
        ["target", "measured (ours, cross-validated)", "target", "verdict"],
        [
            ["F1 all", f"{ours['all']['f1']:.3f}", ">= 0.85", verdict(ours["all"]["f1"], TARGETS["f1_all"])],
            ["F1 fr", f"{ours['fr']['f1']:.3f}", ">= 0.80", verdict(ours["fr"]["f1"], TARGETS["f1_fr"])],
            ["recall@5", f"{recall:.3f}", ">= 0.95", verdict(recall, TARGETS["recall_at_5"])],
        ],
    )
    base = rows[f"trigram GREATEST(title, body) >= {TRIGRAM_THRESHOLD}"]["all"]["f1"]
    if base:
        print(f"F1 all, ours (CV) / Decidim trigram rule: {ours['all']['f1'] / base:.2f}x")
    print(
        f"retrieval recall@{RETRIEVAL_K} (corpus {results['retrieval_recall_at_5']['corpus']} texts, "
        f"{results['retrieval_recall_at_5']['queries']} duplicate queries): MiniLM {recall:.3f} "
        f"{minilm_detail}; trigram {trigram_detail}"
    )
    out = write_results("dedup_quality", started, results)
    print(f"results: {out.relative_to(out.parents[2])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
