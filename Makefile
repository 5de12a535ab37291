# Two commands a user needs on a fresh machine:
#   make demo   creates .venv, installs sg2img, generates images from examples/*.json
#   make test   creates .venv, installs sg2img with its dev extras, runs the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.sg2img-installed

.PHONY: test demo lint clean-venv

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .

demo: $(STAMP)
	$(VENV)/bin/sg2img generate examples/*.json --out outputs/demo --save-layout --draw-graph --sheet

clean-venv:
	rm -rf $(VENV)
