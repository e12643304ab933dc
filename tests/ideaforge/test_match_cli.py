"""`ideaforge eval match FILE`: one JSON report, or a one-line error and exit code 2 for a bad file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ideaforge.cli import main
from ml.embedding import Embedder
from ml.match_evaluation import REPORT_KEYS

MATCH: dict[str, Any] = {
    "experts": [
        {"id": "e1", "name": "A", "organisation": "org-bike", "country": "FR", "languages": ["fr", "en"],
         "capacity": 1, "expertise": "Cycling infrastructure planner. Designs protected bike lanes and junctions."},
        {"id": "e2", "name": "B", "organisation": "org-transit", "country": "CA", "languages": ["en"],
         "capacity": 2, "expertise": "Public transport designer. Bus network redesign and timetables."},
        {"id": "e3", "name": "C", "organisation": "org-street", "country": "IT", "languages": ["en"],
         "capacity": 2, "expertise": "Urban designer. Streets and junctions with protected cycling facilities."},
    ],
    "ideas": [
        {"id": "i1", "title": "Protected bike lanes", "text": "Separate the bike lanes from cars with kerbs.",
         "author_organisation": None, "gold": ["e1", "e3"]},
        {"id": "i2", "title": "Protected junctions", "text": "Rebuild dangerous junctions for cyclists.",
         "author_organisation": "org-bike", "gold": ["e3"]},
        {"id": "i3", "title": "Buses that wait", "text": "Rework bus timetables to meet the trains.",
         "author_organisation": None, "gold": ["e2"]},
    ],
    "partners": [
        {"id": "p1", "name": "X", "country": "FR", "region": "", "kind": "company",
         "offers": "Carpooling app for employers.", "seeks": "Sites abroad."},
        {"id": "p2", "name": "Y", "country": "CA", "region": "", "kind": "company",
         "offers": "Carpooling platform matching colleagues by shift.", "seeks": "A European pilot."},
    ],
    "challenges": [
        {"id": "c1", "title": "Solo drivers", "text": "Our staff drive alone; we want carpooling.",
         "country": "FR", "gold_partners": ["p2"]},
    ],
}  # fmt: skip


def invoke(args: list[str], embedder: Embedder) -> Result:
    return CliRunner().invoke(main, args, obj={"embedder": embedder})


def test_eval_match_prints_one_json_report(tmp_path: Path, embedder: Embedder) -> None:
    path = tmp_path / "match.json"
    path.write_text(json.dumps(MATCH), encoding="utf-8")
    result = invoke(["eval", "match", str(path)], embedder)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # one JSON object and nothing else
    assert tuple(report) == REPORT_KEYS
    assert report["ideas"] == 3
    assert report["challenges"] == 1
    assert report["conflicts_assigned"] == 0
    assert report["over_capacity"] == 0
    assert report["same_country_suggested"] == 0
    assert report["partner_top1"] == 1.0
    for key in ("expert_top1", "expert_recall_at_3", "assignment_in_gold", "partner_recall_at_3"):
        assert 0 <= report[key] <= 1, key


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "does not exist"),
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"experts": [{"id": "e1"}], "ideas": []}), "experts: missing field 'expertise'"),
        (json.dumps(MATCH | {"ideas": [MATCH["ideas"][0] | {"gold": ["e9"]}]}), "unknown experts ['e9']"),
        (
            json.dumps(MATCH | {"experts": [MATCH["experts"][0] | {"capacity": "many"}]}),
            "experts: invalid literal",
        ),
    ],
)
def test_a_bad_file_is_one_line_and_exit_code_2(tmp_path: Path, embedder: Embedder, content: str | None,
                                                 says: str) -> None:  # fmt: skip
    path = tmp_path / "match.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = invoke(["eval", "match", str(path)], embedder)
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
