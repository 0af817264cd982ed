# The quick-start commands:  make demo,  make studio  and  make test
# All set up .venv first, once, from the lock: requirements/lock.txt pins every package (CPU
# torch 2.13.0 included), so a fresh machine gets the set CI tested, whatever was released since.
# `make lock` regenerates the lock; `make test-latest` runs the suite on fresh releases, unlocked.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.gensc-installed
LOCK := requirements/lock.txt

.PHONY: setup demo studio browser test test-latest lock lock-upgrade lint proto bench images test-compose clean

# Everything from the lock (pip, setuptools and wheel too), then gensc itself with no resolution
# and no build isolation, so nothing outside the lock is installed.
$(STAMP): pyproject.toml setup.py $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/gensc demo

# gensc studio on the mini profile: starts the three services locally and opens the page
# (docs/studio.md).
studio: $(STAMP)
	$(VENV)/bin/gensc studio --profile mini --open

# The studio's browser tests drive Debian's Chromium through Debian's chromedriver (never a
# downloaded browser build). Installed with apt-get where that works (root, Debian/Ubuntu: about
# 50 s, 121 MB of packages); once both are there nothing is fetched. Elsewhere those tests skip
# and say why.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then \
		echo "browser for the studio's tests: $$(/usr/bin/chromedriver --version | cut -d' ' -f1-2)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; } \
			|| echo "apt-get could not install Chromium: the studio's browser tests will skip and say why"; \
	else \
		echo "no Chromium, and no apt-get as root to install it: the studio's browser tests will skip"; \
	fi

test: $(STAMP) browser
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

proto: $(STAMP)
	$(PY) -m gensc.proto.generate

# The suite against the newest releases pyproject.toml allows (no lock), in its own venv. Green here
# means `make lock` can take them: regenerate, then `make test`, and note in CHANGELOG.md what moved.
test-latest:
	rm -rf .venv-latest
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install --quiet --upgrade pip
	.venv-latest/bin/python -m pip install --quiet -r requirements/lock.in
	.venv-latest/bin/python -m pip install --quiet -e ".[dev]"
	.venv-latest/bin/python -m pip freeze --exclude-editable > .venv-latest/freeze.txt
	@echo "what moved against the lock (< lock, > latest):"
	@diff <(grep -v -e '^ *#' -e '^ *$$' -e '^\(pip\|setuptools\|wheel\)==' $(LOCK) | tr 'A-Z_' 'a-z-' | sort) \
	      <(tr 'A-Z_' 'a-z-' < .venv-latest/freeze.txt | sort) | grep '^[<>]' || echo "  nothing"
	.venv-latest/bin/python -m ruff check .
	.venv-latest/bin/lint-imports
	.venv-latest/bin/python -m pytest -q

# Regenerate the lock from pyproject.toml's ranges ([dev], every extra) and requirements/lock.in:
# `make lock` keeps every pin that still fits (after a range or a dependency changed);
# `make lock-upgrade` takes the newest releases (after `make test-latest` passed on them).
# pip-compile runs from its own venv (the version the lock pins), so a pyproject.toml that asks for
# something the old lock lacks can still be locked. `--unsafe-package gensc` keeps gensc itself
# out of the lock ([dev] names gensc[all], which pip-compile would pin as `gensc @ file:///<this
# checkout>`, a path no other clone has); pip, setuptools and wheel are then pinned like the rest.
LOCK_COMPILE = .venv-lock/bin/pip-compile --quiet --extra dev --strip-extras --unsafe-package gensc \
	--no-emit-index-url --no-emit-find-links -o $(LOCK)
.venv-lock/bin/pip-compile: $(LOCK)
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet $$(grep -E '^(pip|pip-tools)==' $(LOCK))
lock: .venv-lock/bin/pip-compile
	$(LOCK_COMPILE) pyproject.toml requirements/lock.in
lock-upgrade: .venv-lock/bin/pip-compile
	$(LOCK_COMPILE) --upgrade pyproject.toml requirements/lock.in

bench: $(STAMP)
	$(VENV)/bin/gensc bench services

# The compose stack's images, offline (docs/compose.md): a container engine if none answers (Debian's
# docker.io and docker-compose, as root), the base image (debootstrap), the wheels of the lock, then
# the images. Each step skips what is already done. Then: docker-compose up -d
images:
	deploy/compose/engine.sh start
	deploy/compose/base-image.sh
	deploy/compose/wheels.sh cpu
	deploy/compose/build.sh

# The stack run for real (tests/app/test_compose.py; `make test` runs it too when an engine answers).
test-compose: $(STAMP) images
	$(PY) -m pytest -q -s tests/app/test_compose.py

clean:
	rm -rf $(VENV) .venv-latest .venv-lock build *.egg-info demo-out results
