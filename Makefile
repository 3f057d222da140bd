# Every target sets up .venv on first use, so `make baseline` and `make test` work on a fresh machine.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DATA   ?=
ARGS   ?=
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: setup baseline advanced tune test bench bench-anchors bench-defaults bench-scale bench-advanced bench-tune bench-report lint clean wheel

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

baseline: $(STAMP)
	$(VENV)/bin/kit baseline $(DATA)

# custom TF loop on TPU/GPUs/CPU; the run folder also gets model/ for `kit predict`
advanced: $(STAMP)
	$(VENV)/bin/kit advanced $(DATA)

# make tune DATA=path/to/titanic TRACK=baseline TRIALS=50 [BUDGET=3600]; run it again to go on,
# or from several terminals at once; then: kit $(TRACK) DATA --config <tuning folder>/best.toml
TRACK  ?= baseline
TRIALS ?= 50
BUDGET ?=
tune: $(STAMP)
	$(VENV)/bin/kit tune $(DATA) --track $(TRACK) --trials $(TRIALS) $(if $(BUDGET),--time-budget $(BUDGET)) $(ARGS)

# a worker process per core (at most 4), each test file in one of them (its fixtures built once);
# `.venv/bin/pytest tests/test_x.py` runs in this process
test: $(STAMP)
	$(PY) -m pytest -n auto --maxprocesses 4 --dist loadfile

# make bench ARGS="--only titanic,house-prices --out results.md"; AutoGluon joins where
# .venv-anchors exists (make bench-anchors)
bench: $(STAMP)
	$(PY) bench/bench.py $(ARGS)

# AutoGluon 1.6 (LightGBM, CatBoost, XGBoost; no PyTorch) in its own venv, never kit's dependency,
# then the bench with it in the same run
ANCHORS := .venv-anchors
$(ANCHORS)/.installed:
	test -x $(ANCHORS)/bin/python || python3 -m venv $(ANCHORS)
	$(ANCHORS)/bin/python -m pip install -q --upgrade pip
	$(ANCHORS)/bin/python -m pip install -q "autogluon.tabular[lightgbm,catboost,xgboost]==1.6.*" polars
	touch $(ANCHORS)/.installed

bench-anchors: $(STAMP) $(ANCHORS)/.installed
	$(PY) bench/bench.py $(ARGS)

# time, peak memory and score from 100k to 10M rows and on a 177k-row playground shape
bench-scale: $(STAMP)
	$(PY) bench/bench_scale.py $(ARGS)

# the defaults of a track from CV on the shared and synthetic competitions:
# make bench-defaults ARGS="--track baseline base 'k4:k=4'"
bench-defaults: $(STAMP)
	$(PY) bench/defaults.py $(ARGS)

# make bench-advanced ARGS="--only titanic --skip-scores"
bench-advanced: $(STAMP)
	$(PY) bench/bench_advanced.py $(ARGS)

# tuned vs untuned score, share of trials pruned, peak RSS after 5 and 30 trials
bench-tune: $(STAMP)
	$(PY) bench/bench_tune.py $(ARGS)

# report.html of a baseline run on each shared competition: its size, and its seconds as a share of the run's
bench-report: $(STAMP)
	$(PY) bench/bench_report.py $(ARGS)

# A pure-Python wheel of kit in dist/, for a Kaggle dataset: there, with the internet off,
# `pip install --no-index --no-deps /kaggle/input/<dataset>/kit-*.whl` (see README). The Kaggle
# image lacks tomli-w, so the wheel carries the installed copy (MIT licence) as kit._vendor.tomli_w.
wheel: $(STAMP)
	rm -rf build dist/kit-*.whl
	$(PY) -m pip wheel -q --no-deps --no-build-isolation --wheel-dir build/wheel .
	$(PY) -m wheel unpack -d build/unpacked build/wheel/kit-*.whl
	$(PY) -c 'import pathlib, shutil, tomli_w; from importlib import metadata; \
	dest = next(pathlib.Path("build/unpacked").glob("kit-*")) / "kit" / "_vendor"; \
	shutil.copytree(pathlib.Path(tomli_w.__file__).parent, dest / "tomli_w", ignore=shutil.ignore_patterns("__pycache__")); \
	(dest / "__init__.py").write_text("# packages the Kaggle image lacks, carried by the wheel\n"); \
	licence = next(f for f in metadata.files("tomli-w") if f.name.startswith("LICENSE")); \
	shutil.copy(licence.locate(), dest / "tomli_w" / "LICENSE")'
	mkdir -p dist
	$(PY) -m wheel pack -d dist build/unpacked/kit-*
	@ls dist/kit-*.whl

lint: $(STAMP)
	$(VENV)/bin/ruff check kit pipelines tests bench
	$(VENV)/bin/ruff format --check kit pipelines tests bench

clean:
	rm -rf $(VENV) $(ANCHORS) build dist *.egg-info data
