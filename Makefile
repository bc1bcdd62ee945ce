# Two entry points (see README): `make reports` and `make test`. Both (re)use .venv.
VENV ?= .venv
STAMP := $(VENV)/.wormlab-installed

.PHONY: reports test setup smoke lint
reports: $(STAMP)          ## install everything, run every notebook -> reports/
	scripts/reports.sh

test: $(STAMP)             ## the test suite (CI runs this)
	scripts/test.sh

smoke: $(STAMP)            ## every notebook in smoke mode
	scripts/reports.sh --smoke

setup: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check wormlab widgets tests

$(STAMP): pyproject.toml scripts/setup.sh
	scripts/setup.sh
