from __future__ import annotations

import uuid

import asyncpg
import pytest

from ml.trigram import similarity, trigrams
from tests.services import PG_ADMIN_URL


def test_trigrams_pad_each_word_two_spaces_before_one_after() -> None:
    assert trigrams("cat") == {"  c", " ca", "cat", "at "}
    assert trigrams("Word") == {"  w", " wo", "wor", "ord", "rd "}


def test_trigrams_are_a_set_of_lower_cased_words_split_on_non_alphanumerics() -> None:
    assert trigrams("a") == {"  a", " a "}
    assert trigrams("CAT, cat!") == trigrams("cat")
    assert trigrams("foo_bar") == trigrams("foo") | trigrams("bar")
    assert trigrams("Éclair") == trigrams("éclair")
    assert trigrams("") == set()
    assert trigrams("!!! ...") == set()


def test_similarity_follows_the_documented_algorithm() -> None:
    # word: {"  w"," wo","wor","ord","rd "}; two words adds {"  t"," tw","two","wo ","rds","ds "}
    # and "  w"," wo","wor","ord" are shared: 4 / (5 + 10 - 4) = 4/11.
    assert similarity("word", "two words") == pytest.approx(4 / 11)
    # cat / dog share nothing.
    assert similarity("cat", "dog") == 0.0
    # "a b" has {"  a"," a ","  b"," b "}, "a" two of them: 2/4.
    assert similarity("a b", "a") == pytest.approx(0.5)
    # Identical trigram sets whatever the case, punctuation or word order.
    assert similarity("Hello, World!", "world hello") == 1.0
    assert similarity("", "abc") == 0.0
    assert similarity("", "") == 0.0


# Observed with PostgreSQL 15's pg_trgm (``SELECT similarity(a, b)``, real values, C.UTF-8 database).
PG_TRGM_SIMILARITY = [
    ("word", "two words", 0.36363637),
    ("word", "word", 1.0),
    ("cat", "dog", 0.0),
    ("", "abc", 0.0),
    ("Hello, World!", "hello world", 1.0),
    ("foo_bar", "foo bar", 1.0),
    ("piste cyclable", "pistes cyclables", 0.7222222),
    ("Éclairage public", "éclairage", 0.5882353),
    ("a b", "a", 0.5),
    ("abc123", "abc 123", 0.5),
    ("banana", "bananas", 0.625),
    ("aaa", "aaaa", 1.0),
]


@pytest.mark.parametrize(("a", "b", "expected"), PG_TRGM_SIMILARITY)
def test_similarity_matches_pg_trgm(a: str, b: str, expected: float) -> None:
    assert similarity(a, b) == pytest.approx(expected, abs=1e-6)


@pytest.mark.postgres
async def test_similarity_matches_the_live_pg_trgm() -> None:
    name = f"ml_trgm_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0")
        try:
            conn = await asyncpg.connect(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
            try:
                try:
                    await conn.execute("CREATE EXTENSION pg_trgm")
                except asyncpg.PostgresError as exc:
                    pytest.skip(f"pg_trgm is not available: {exc}")
                for a, b, _expected in PG_TRGM_SIMILARITY:
                    observed = await conn.fetchval("SELECT similarity($1, $2)", a, b)
                    assert similarity(a, b) == pytest.approx(observed, abs=1e-6), (a, b)
            finally:
                await conn.close()
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
