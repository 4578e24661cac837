# The course's two commands. Both create (or reuse) .venv and install everything first.
PYTHON ?= python3

.PHONY: lab test setup lint figures
lab:    ## open the course in JupyterLab
	$(PYTHON) scripts/bootstrap.py lab $(ARGS)
test:   ## run the whole test suite (offline, fast mode)
	$(PYTHON) scripts/bootstrap.py test $(ARGS)
setup:  ## only create or update .venv
	$(PYTHON) scripts/bootstrap.py setup
lint: setup
	.venv/bin/python -m ruff check .
figures: setup
	.venv/bin/python figures/make_figures.py
