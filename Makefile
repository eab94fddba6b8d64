# Two entry points that work on a fresh machine with only Python 3.10+ and pip:
#   make demo   sets up .venv and runs the main job (the verification report)
#   make test   sets up .venv and runs the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/nllax report

test: $(STAMP)
	$(BIN)/python -m pytest

# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (set on some processors here for old OpenBLAS builds)
# slow a current NumPy/SciPy: unset for this command alone, so the baselines run at full speed.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache
