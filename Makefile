# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DEMO_CUSTOMERS ?= 500
export DJANGO_SETTINGS_MODULE := collections_mgmt.settings

.PHONY: install run test lint format migrate seed bench clean docs docs-screenshots

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

install: $(VENV)/.installed

# Set up on the embedded defaults (SQLite + filesystem broker), seed the demo portfolio
# once, train the late-payment model on its history (once) and score the open invoices,
# plan today's dunning notices (what the first nightly run would plan, so the outbox
# is not empty; planning twice plans nothing twice), then run the web server, a Celery
# worker and celery beat together.
run: install
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py migrate --no-input
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py seed_demo --customers $(DEMO_CUSTOMERS) --if-empty
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py train_predictor --if-none
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py score_invoices
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py run_dunning --plan-only
	DEBUG=$${DEBUG:-true} $(BIN)/python scripts/run_all.py

# The browser tests (tests/browser/, marked `browser`) run with the rest: they need
# Debian's chromium and chromium-driver (.ci/run installs them); without them they are
# skipped, saying why, except under CI. The manual must build without a warning.
test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mkdocs build --strict --quiet
	@url="$$($(BIN)/python scripts/test_database_url.py)" || exit 1; \
	echo "Testing against $$url"; \
	DATABASE_URL="$$url" ALLOW_INSECURE_SECRET_KEY=true \
		$(BIN)/pytest -p no:cacheprovider
	@echo "The reports' hand-written SQL again on SQLite, the embedded default:"
	DATABASE_URL=sqlite:///$(CURDIR)/var/test-sqlite.sqlite3 ALLOW_INSECURE_SECRET_KEY=true \
		$(BIN)/pytest -p no:cacheprovider -q tests/reporting/test_aging_report.py \
		tests/reporting/test_aging_ledger.py

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The manual (docs/, MkDocs) as a static site in var/site/; `--strict` makes every warning,
# a broken internal link included, an error.
docs: install
	$(BIN)/mkdocs build --strict
	@echo "The manual is in var/site/index.html"

# Retake the manual's screenshots (docs/img/) with the browser tests.
docs-screenshots: install
	@url="$$($(BIN)/python scripts/test_database_url.py)" || exit 1; \
	DATABASE_URL="$$url" ALLOW_INSECURE_SECRET_KEY=true DOCS_SCREENSHOTS=1 \
		$(BIN)/pytest -p no:cacheprovider -q tests/browser

bench: install
	$(BIN)/python bench/admin_changelist.py

clean:
	rm -rf var $(VENV) .pytest_cache .ruff_cache
