# One image for the API and the Celery workers: the runtime dependencies only (no torch, no
# training code, no embedded Redis), the exported models baked in, a non-root user.
#
# Offline-friendly: no BuildKit frontend is pulled (works with the classic builder too), and the
# base is a build argument, so an air-gapped site can use any Debian-like image with python3 and
# its venv module (e.g. one made by mmdebstrap; see docs/deploy.md).
#   docker build --build-arg BASE_IMAGE=registry.example/python:3.11 .
#   docker build --build-arg ORT_PACKAGE=onnxruntime-gpu .          # GPU workers (untested)
# Behind a TLS-inspecting proxy, put its CA certificate(s) as *.crt in deploy/ca-certificates/:
# they are trusted by pip and the web-vendor fetch in the build stage only.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ARG ORT_PACKAGE=onnxruntime
# pip's index and the npm registry, when the site mirrors them (HTTP(S)_PROXY and NO_PROXY are
# Docker's predefined build arguments and reach pip without being declared).
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG NPM_CONFIG_REGISTRY=https://registry.npmjs.org
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_INDEX_URL=${PIP_INDEX_URL} \
    NPM_CONFIG_REGISTRY=${NPM_CONFIG_REGISTRY} \
    PIP_CERT=/tmp/ca-bundle.crt SSL_CERT_FILE=/tmp/ca-bundle.crt
COPY deploy/ca-certificates/ /tmp/extra-ca/
RUN cat /etc/ssl/certs/ca-certificates.crt > /tmp/ca-bundle.crt \
    && for cert in /tmp/extra-ca/*.crt; do [ -f "$cert" ] && cat "$cert" >> /tmp/ca-bundle.crt; done; \
    python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# The same pins as `make run` (constraints.txt; see docs/deploy.md to update them). The
# dependencies first, in a layer of their own, so a change to service/ does not download them all
# again.
COPY constraints.txt pyproject.toml README.md ./
RUN mkdir service && touch service/__init__.py \
    && pip install -c constraints.txt . && pip uninstall -y actionstyle \
    && if [ "$ORT_PACKAGE" != onnxruntime ]; then \
         version="$(pip show onnxruntime | sed -n 's/^Version: //p')" \
         && pip uninstall -y onnxruntime && pip install "$ORT_PACKAGE==$version"; \
       fi
COPY scripts/fetch_web_vendor.py ./scripts/
COPY service ./service
RUN python scripts/fetch_web_vendor.py && pip install --no-deps .

FROM ${BASE_IMAGE} AS runtime
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
