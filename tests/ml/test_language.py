from __future__ import annotations

import pytest

from ml.language import guess_language


@pytest.mark.parametrize(
    "text",
    [
        "Install more bike racks near the station for the commuters.",
        "We should plant trees in the park and on the main street.",
        "IT IS TIME FOR A SAFER CROSSING AT THE SCHOOL",
    ],
)
def test_english(text: str) -> None:
    assert guess_language(text) == "en"


@pytest.mark.parametrize(
    "text",
    [
        "Installer des bancs dans le parc pour les personnes âgées.",
        "Nous voulons une piste cyclable sur la route du lycée",
        "L'eau potable gratuite dans les jardins publics",
        "Des fontaines et une aire de jeux",  # no accent: the common words decide
    ],
)
def test_french(text: str) -> None:
    assert guess_language(text) == "fr"


@pytest.mark.parametrize("text", ["", "   ", "12345 !?", "Wifi"])
def test_no_sign_either_way(text: str) -> None:
    assert guess_language(text) == ""


@pytest.mark.parametrize("text", ["Créé à Noël", "éèàç", "Crêpes"])
def test_accented_text_without_common_words_is_french(text: str) -> None:
    assert guess_language(text) == "fr"


def test_elisions_count_as_the_word_they_contain() -> None:
    # "d'un" and "l'été" are "un" and "été": French even with English loanwords around them.
    assert guess_language("d'un food truck cool") == "fr"
