"""Expert and partner matching quality on match_dev.json (issue 6), side by side.

    .venv/bin/python bench/match_quality.py [--data ../shared/data/match_dev.json]

Rows, each with every figure of ``ideaforge eval match``:

- **baseline**: plain all-MiniLM-L6-v2 cosine (idea title + text against the whole expertise), each idea's
  top expert taken greedily (conflicts and capacities ignored); partners by cosine to the whole offers,
  every country.
- **baseline, conflicts skipped**: the same cosine with conflicted experts removed before ranking
  (the README's 0.72), still greedy.
- **ours**: ``ml.match_evaluation.evaluate_match`` (``ml.matching.affinity`` with the shipped constants,
  min-cost-flow assignment, partners from other countries).

Then how the affinity's two constants were chosen: leave-one-out over a grid (the pair with the best
top-1 on 59 ideas, ties broken by mean reciprocal rank of the first gold expert, judged on the 60th),
and the in-sample grid, so the shipped constants can be checked against both. Ablations: no centering,
whole-text only, best sentence only, and a shared-language bonus.
"""

from __future__ import annotations

import argparse
import json
import time
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
from _mlcommon import DATA, command_line, log, machine_info, machine_line, now, print_table, write_results

from ml.embedding import DEFAULT_MODEL, SentenceTransformerEmbedder
from ml.match_evaluation import (
    REPORT_KEYS,
    MatchData,
    evaluate_match,
    expert_figures,
    expert_scores,
    parse_match_data,
    plain_expert_scores,
)
from ml.matching import FITTED, AffinityWeights, Matrix, greedy_assign, idea_language
from tests.ml.conftest import CachingEmbedder

MATCH_DEV = DATA / "match_dev.json"
TARGETS = {
    "expert_top1": (">=", 0.85),
    "assignment_in_gold": (">=", 0.85),
    "conflicts_assigned": ("==", 0),
    "over_capacity": ("==", 0),
    "partner_recall_at_3": (">=", 0.95),
    "same_country_suggested": ("==", 0),
}
WHOLE_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 1.0)
CENTERING_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)


def per_idea(data: MatchData, scores: Matrix) -> tuple[np.ndarray, np.ndarray]:
    """For each idea: is its top expert in gold, and the reciprocal rank of its first gold expert."""
    ids = [e.id for e in data.experts]
    hit, rr = np.zeros(len(data.ideas)), np.zeros(len(data.ideas))
    for i, gold in enumerate(data.gold):
        order = [ids[j] for j in np.argsort(-scores[i], kind="stable") if np.isfinite(scores[i, j])]
        hit[i] = bool(order) and order[0] in gold
        rank = next((r for r, e in enumerate(order, start=1) if e in gold), None)
        rr[i] = 1 / rank if rank else 0.0
    return hit, rr


def leave_one_out(data: MatchData, embedder: Any) -> dict[str, Any]:
    grid = list(product(WHOLE_GRID, CENTERING_GRID))
    results = {w: per_idea(data, expert_scores(data, embedder, AffinityWeights(*w))) for w in grid}
    n = len(data.ideas)
    held_out, chosen = np.zeros(n), []
    for i in range(n):
        keep = np.arange(n) != i

        def train(w: tuple[float, float], keep: np.ndarray = keep) -> tuple[float, float]:
            return float(results[w][0][keep].mean()), float(results[w][1][keep].mean())

        best = max(grid, key=train)
        chosen.append(best)
        held_out[i] = results[best][0][i]
    counts: dict[str, int] = {}
    for w in chosen:
        counts[f"whole={w[0]} centering={w[1]}"] = counts.get(f"whole={w[0]} centering={w[1]}", 0) + 1
    return {
        "leave_one_out_top1": round(float(held_out.mean()), 4),
        "chosen_per_fold": counts,
        "in_sample": {
            f"whole={w[0]} centering={w[1]}": round(float(r[0].mean()), 4) for w, r in results.items()
        },
    }


def language_bonus(data: MatchData, embedder: Any, bonus: float) -> dict[str, Any]:
    scores = expert_scores(data, embedder)
    for i, idea in enumerate(data.ideas):
        language = idea_language(idea)
        for j, expert in enumerate(data.experts):
            if language in expert.languages:
                scores[i, j] += bonus
    return figures_for(data, scores)


def figures_for(data: MatchData, scores: Matrix) -> dict[str, Any]:
    from ml.matching import assign

    assigned = assign(scores, [e.capacity for e in data.experts]).experts
    return expert_figures(data, scores, assigned)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=MATCH_DEV)
    args = parser.parse_args()
    started = now()
    machine = machine_info()
    log(machine_line(machine))
    raw = json.loads(args.data.read_text(encoding="utf-8"))
    data = parse_match_data(raw)
    embedder = CachingEmbedder(SentenceTransformerEmbedder(DEFAULT_MODEL))

    t0 = time.perf_counter()
    ours = evaluate_match(raw, embedder)
    first_run = time.perf_counter() - t0
    t0 = time.perf_counter()
    evaluate_match(raw, embedder)
    cached_run = time.perf_counter() - t0
    baseline = evaluate_match(raw, embedder, baseline=True)
    plain = plain_expert_scores(data, embedder)
    for i, idea in enumerate(data.ideas):
        for j, expert in enumerate(data.experts):
            if expert.organisation is not None and expert.organisation in idea.organisations:
                plain[i, j] = -np.inf
    skipped = expert_figures(data, plain, greedy_assign(plain).experts)
    rows = {"baseline (plain cosine, greedy)": baseline,
            "baseline, conflicts skipped": skipped | {k: baseline[k] for k in REPORT_KEYS if k not in skipped},
            "ours": ours}  # fmt: skip
    print_table(["figure", *rows, "target", "verdict"], [
        [key, *(r[key] for r in rows.values()), " ".join(map(str, TARGETS[key])) if key in TARGETS else "",
         _verdict(key, ours[key])]
        for key in REPORT_KEYS
    ])  # fmt: skip
    log("leave-one-out over the affinity's constants")
    loo = leave_one_out(data, embedder)
    print(f"\nshipped constants: whole={FITTED.whole} centering={FITTED.centering}")
    print(
        f"leave-one-out expert top-1: {loo['leave_one_out_top1']}  (choices per fold: {loo['chosen_per_fold']})"
    )
    grid = loo["in_sample"]
    print_table(["whole \\ centering", *map(str, CENTERING_GRID)],
                [[str(w), *(grid[f"whole={w} centering={c}"] for c in CENTERING_GRID)] for w in WHOLE_GRID])  # fmt: skip
    ablations = {
        "no centering": figures_for(data, expert_scores(data, embedder, AffinityWeights(FITTED.whole, 0.0))),
        "whole text only, centred": figures_for(
            data, expert_scores(data, embedder, AffinityWeights(1.0, 1.0))
        ),
        "best sentence only, centred": figures_for(
            data, expert_scores(data, embedder, AffinityWeights(0.0, 1.0))
        ),
        **{f"+ shared-language bonus {b}": language_bonus(data, embedder, b) for b in (0.02, 0.05, 0.1)},
    }
    print()
    keys = ["expert_top1", "expert_recall_at_3", "assignment_in_gold"]
    print_table(["ablation", *keys], [[name, *(a[k] for k in keys)] for name, a in ablations.items()])
    print(
        f"\nevaluate_match time: {first_run:.1f} s with encoding, {cached_run * 1000:.0f} ms with vectors cached"
    )
    out = write_results("match_quality", started, {
        "command": command_line(), "machine": machine, "data": str(args.data), "rows": rows,
        "targets": {k: list(v) for k, v in TARGETS.items()}, "fit": loo, "ablations": ablations,
        "seconds": {"evaluate_with_encoding": round(first_run, 2), "evaluate_cached": round(cached_run, 4)},
    })  # fmt: skip
    log(f"written {out}")


def _verdict(key: str, value: float) -> str:
    if key not in TARGETS:
        return ""
    op, target = TARGETS[key]
    ok = value >= target if op == ">=" else value == target
    return "PASS" if ok else "FAIL"


if __name__ == "__main__":
    main()
