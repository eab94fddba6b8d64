# Two entry points that work on a fresh machine with only Python 3.10+ and pip:
#   make demo   sets up .venv and runs the main job (the verification report)
#   make test   sets up .venv and runs the test suite
#   make test-fast   the inner loop: without the `slow` tests (NIST, notebooks)
#   make test-xla2   the numeric core again under another XLA CPU configuration (CI runs it):
#                    fully optimised compiles, AVX code, one device
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast test-xla2 bench clean

# pytest-xdist: one worker per core ("auto"; WORKERS=0 runs in this process). --dist
# loadfile keeps each test module in one worker: tests share compiled functions through
# module-level caches, and some need their module's other tests in the same process
# (test_audit's docs table collects every verdict).
WORKERS ?= auto
PYTEST := $(BIN)/python -m pytest -n $(WORKERS) --dist loadfile
# The numeric core: the registry harness, the families, the equivalences, same theta-hat, fit.
CORE := tests/test_harness_*.py tests/test_families.py tests/test_equivalences.py \
	tests/test_same_theta.py tests/test_fit.py
# Another XLA CPU configuration: one device instead of four, and code generated for AVX
# without AVX2 and FMA (other roundings in exp, log, log1p...; SSE4_2 gives the same ones
# but its code cannot convert float16), so that a tolerance that holds by the luck of one
# machine's rounding fails here. And XLA's default, fully optimised compiles: `make test`
# compiles with `JAX_DISABLE_MOST_OPTIMIZATIONS=1` (tests/conftest.py; LLVM -O0, about a
# fifth less CPU for the suite's thousands of small programs), so that between the two
# passes both the optimised code users run and another code generation are tested.
XLA2_FLAGS := --xla_cpu_max_isa=AVX

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/nllax report

test: $(STAMP)
	$(PYTEST)

test-fast: $(STAMP)
	$(PYTEST) -q -m "not slow"

test-xla2: $(STAMP)
	NLLAX_TEST_OPTIMIZE=1 NLLAX_TEST_DEVICES=1 XLA_FLAGS="$(XLA2_FLAGS) $$XLA_FLAGS" $(PYTEST) -q $(CORE)

# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (set on some processors here for old OpenBLAS builds)
# slow a current NumPy/SciPy: unset for this command alone, so the baselines run at full speed.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache
