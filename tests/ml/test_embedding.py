from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ml.embedding import (
    DEFAULT_MODEL,
    Embedder,
    ModelUnavailable,
    SentenceTransformerEmbedder,
    bf16_supported,
    resolve_model,
    resolve_precision,
)

TEXTS = [
    "Install more bike racks near the train station.",
    "Créer une piste cyclable le long de la rivière.",
    "Free coding lessons for teenagers at the library.",
]


def test_vectors_are_unit_length_float32_one_row_per_text(embedder: Embedder) -> None:
    vectors = embedder.encode(TEXTS)
    assert embedder.model_name == DEFAULT_MODEL
    assert embedder.dimension == 384
    assert vectors.shape == (len(TEXTS), embedder.dimension)
    assert vectors.dtype == np.float32
    assert vectors.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_text_gets_the_same_vector_alone_or_in_a_batch(embedder: Embedder) -> None:
    batch = embedder.encode(TEXTS)
    for row, text in zip(batch, TEXTS, strict=True):
        np.testing.assert_allclose(embedder.encode([text])[0], row, atol=1e-5)


def test_paraphrases_are_closer_than_unrelated_texts(embedder: Embedder) -> None:
    a, paraphrase, unrelated = embedder.encode(
        [
            "Plant trees along the main street to give shade in summer.",
            "Add trees on the high street so pedestrians have shade during hot summer days.",
            "Offer free coding lessons for teenagers at the public library.",
        ]
    )
    close, far = float(a @ paraphrase), float(a @ unrelated)
    assert close > 0.6
    assert far < 0.3
    assert close > far + 0.3


def test_no_texts_give_an_empty_matrix_of_the_right_width(embedder: Embedder) -> None:
    vectors = embedder.encode([])
    assert vectors.shape == (0, embedder.dimension)
    assert vectors.dtype == np.float32


def test_the_default_model_ships_in_site_packages() -> None:
    path = Path(resolve_model(DEFAULT_MODEL))
    assert path.is_dir()
    assert (path / "config.json").exists() or (path / "modules.json").exists()
    assert resolve_model("/some/local/model") == "/some/local/model"


def test_a_missing_model_raises_model_unavailable_naming_it(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(ModelUnavailable, match="no-such-model"):
        SentenceTransformerEmbedder(missing)


def test_a_broken_model_raises_model_unavailable_naming_it(tmp_path: Path) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "modules.json").write_text("{ not json")
    (broken / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    with pytest.raises(ModelUnavailable, match="broken-model"):
        SentenceTransformerEmbedder(str(broken))


@pytest.mark.skipif(not bf16_supported(), reason="this CPU has no native bfloat16: auto means fp32 here")
def test_bf16_gives_unit_vectors_that_agree_with_fp32(embedder: Embedder) -> None:
    texts = ["Install drinking fountains in every park.", "Des bancs tous les 200 mètres pour les aînés."]
    fast = SentenceTransformerEmbedder(DEFAULT_MODEL, precision="auto")
    assert fast.precision == "bf16"
    vectors = fast.encode(texts)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert (vectors * embedder.encode(texts)).sum(axis=1).min() > 0.995


def test_fp32_is_kept_when_asked_and_auto_follows_the_cpu() -> None:
    assert resolve_precision("fp32") == "fp32"
    assert resolve_precision("bf16") == "bf16"
    assert resolve_precision("auto") == ("bf16" if bf16_supported() else "fp32")
