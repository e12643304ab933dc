# One image for every service (web, worker, migrate); compose.yaml picks the command.
FROM python:3.11-slim-bookworm

RUN useradd --create-home --uid 10001 ideaforge \
    && mkdir -p /data && chown ideaforge:ideaforge /data
WORKDIR /app

# torch is installed before the project, pinned, so the resolver pulls nothing newer. PyPI's x86_64
# torch wheel bundles CUDA: pass the CPU wheel index of your mirror as TORCH_INDEX_URL for a small image.
ARG TORCH_INDEX_URL=""
RUN pip install --no-cache-dir ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} torch==2.13.0

COPY pyproject.toml README.md ./
COPY ideaforge ./ideaforge
COPY challenges ./challenges
COPY ideas ./ideas
COPY ml ./ml
COPY templates ./templates
# Editable: templates/ sits at the repo root and is found relative to the source tree, not the wheel.
RUN pip install --no-cache-dir -e .

ENV IDEAFORGE_DATA_DIR=/data \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    PYTHONUNBUFFERED=1
# /data is created and chowned above so a fresh named volume inherits the non-root owner.
VOLUME /data
EXPOSE 8000
USER ideaforge

# No curl in slim images: probe with the standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["ideaforge", "serve", "--host", "0.0.0.0", "--port", "8000"]
