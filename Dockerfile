# syntax=docker/dockerfile:1
# One image for the API and the Celery workers: the runtime dependencies only (no torch, no
# training code), the exported models baked in, a non-root user.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
RUN pip install --upgrade pip && pip install .

FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    ACTIONSTYLE_MODELS_DIR=/app/exported_models \
    ACTIONSTYLE_STORAGE_DIR=/data/storage
# glibc's default of 8 malloc arenas per core keeps memory that request threads have freed.
ENV MALLOC_ARENA_MAX=2
RUN useradd --create-home --uid 10001 actionstyle \
    && mkdir -p /data/storage \
    && chown actionstyle:actionstyle /data/storage
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY exported_models ./exported_models
USER actionstyle
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["uvicorn", "service.app:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000"]
