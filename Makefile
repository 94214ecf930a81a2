# Two commands: `make reproduce` (the default workflow) and `make test`.
# Each sets up .venv itself (created if missing or stale).
SHELL := /bin/bash
VENV := .venv/bin
# One job per core: oversubscribing a small machine stretches the longest jobs (the critical path).
CORES ?= $(shell nproc)

.PHONY: setup test reproduce lint smoke

setup:
	@scripts/setup_env.sh

test: setup
	$(VENV)/ruff check darc theory tests workflow/scripts benchmarks
	$(VENV)/python -m pytest -q

reproduce: setup
	PATH=$(CURDIR)/.venv/bin:$$PATH $(VENV)/snakemake --cores $(CORES)

smoke: setup
	PATH=$(CURDIR)/.venv/bin:$$PATH $(VENV)/snakemake --cores $(CORES) --config scale=smoke
	PATH=$(CURDIR)/.venv/bin:$$PATH $(VENV)/snakemake --cores 1 --config scale=smoke --report runs/smoke/report.html

lint: setup
	$(VENV)/ruff check darc theory tests workflow/scripts benchmarks
	PATH=$(CURDIR)/.venv/bin:$$PATH $(VENV)/snakemake --lint
