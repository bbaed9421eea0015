# scanopt: every command a person runs. `just --list` shows them by group.

set dotenv-load := false

python := ".venv/bin/python"
export PYTHONPATH := justfile_directory()

# list the recipes
default:
    @{{just_executable()}} --list --unsorted

# create .venv and install scanopt with its dev tools
[group('setup')]
setup:
    test -x {{python}} || python3 -m venv .venv
    {{python}} -m pip install -q -e '.[dev]'
    {{just_executable()}} test-deps

# write the simulated scan history (data/scan_history.{jsonl,parquet})
[group('train')]
generate *ARGS:
    {{python}} -m train.generate {{ARGS}}

# fit the three models on the history; metrics and plots go to var/train/
[group('train')]
train *ARGS:
    {{python}} -m train.fit {{ARGS}}

# compare model settings by cross-validation grouped by user: --lever NAME (train.crossval.LEVERS), --latency
[group('train')]
crossval *ARGS:
    {{python}} -m train.crossval {{ARGS}}

# convert the fitted models to ONNX (with parity) and point artifacts/current at them
[group('train')]
export *ARGS:
    {{python}} -m export.onnx {{ARGS}}

# add the drift calibration (design effects of the time-ordered training history) to a version's manifest in place: --version V, --history PATH, --seed N
[group('train')]
drift-calibrate *ARGS:
    {{python}} -m export.drift {{ARGS}}

# reload artifacts/current from disk only and check checksums, parity and targets
[group('train')]
validate *ARGS:
    {{python}} -m export.validate {{ARGS}}

# trees and one-row onnxruntime µs of versions (default: current), interleaved rounds on their parity rows
[group('train')]
model-cost *ARGS:
    {{python}} -m export.latency {{ARGS}}

# generate, train, export and validate when artifacts/ has no model yet
[group('train')]
model:
    test -f artifacts/current || {{python}} -m train.generate
    test -f artifacts/current || {{python}} -m train.fit
    test -f artifacts/current || {{python}} -m export.onnx
    {{python}} -m export.validate

# serve artifacts/current with Granian on SCANOPT_HOST:SCANOPT_PORT (README, "Serving")
[group('serve')]
serve:
    {{python}} -m server.serve

# the model versions newest first: metrics, parent, which one artifacts/current names (--json for JSON)
[group('models')]
models *ARGS:
    {{python}} -m export.models list {{ARGS}}

# validate VERSION (the checks of `just validate`), then switch artifacts/current to it atomically
[group('models')]
promote VERSION *ARGS:
    {{python}} -m export.models promote {{VERSION}} {{ARGS}}

# serve the parent of the current version again (validated like a promotion)
[group('models')]
rollback *ARGS:
    {{python}} -m export.models rollback {{ARGS}}

# delete old versions, keeping the N newest (--keep, default 5) and always current and its parent
[group('models')]
prune *ARGS:
    {{python}} -m export.models prune {{ARGS}}

# a challenger from the store's labelled outcomes (SCANOPT_STORE_DSN), compared with the champion and promoted only if it wins
[group('models')]
retrain *ARGS:
    {{python}} -m train.retrain {{ARGS}}

# make sure a model exists (`just model`), then serve it
[group('serve')]
up: model
    {{python}} -m server.serve

# show or change A/B experiments in the store: show | set NAME --coverage .. --weights a=..,b=.. | kill | resume | usage
[group('serve')]
experiment *ARGS:
    {{python}} -m server.experiment_cli {{ARGS}}

# an experiment's report (default ml_scanning) from SCANOPT_URL or the store: var/reports/<name>.{json,html,md}
[group('serve')]
report *ARGS:
    {{python}} -m bench.experiment_report {{ARGS}}

# GrowthBook's stats engine, the parity tests' reference, when it is missing: its numpy/pandas < 2
# pins are for a DataFrame runner the tests never import, so it is installed without them
[group('test')]
test-deps:
    {{python}} -c "import gbstats" 2>/dev/null || {{python}} -m pip install -q --no-deps gbstats==0.8.0

# run the whole test suite, after the linters
[group('test')]
test: lint test-deps
    {{python}} -m pytest

# ruff format check, ruff lint and mypy --strict
[group('test')]
lint:
    {{python}} -m ruff format --check .
    {{python}} -m ruff check .
    {{python}} -m mypy

# check deploy/prometheus/alerts.yml and run its promtool rule tests (Debian package prometheus)
[group('test')]
rules:
    cd deploy/prometheus && promtool check rules alerts.yml && promtool test rules alerts_test.yml

# redraw docs/dashboard.png: the browser test over a real server, its screenshot kept
[group('test')]
dashboard-screenshot:
    SCANOPT_DASHBOARD_SCREENSHOT=docs/dashboard.png {{python}} -m pytest tests/server/dashboard/test_page.py -q

# reformat and autofix
[group('test')]
fmt:
    {{python}} -m ruff format .
    {{python}} -m ruff check --fix .

# install wrk (the closed-loop load tool) from Debian when it is missing and we are root
[group('bench')]
bench-tools:
    command -v wrk >/dev/null || [ "$(id -u)" != 0 ] || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null)
    command -v wrk >/dev/null || (echo "wrk is missing: apt-get install wrk (as root)" >&2; exit 1)

# every benchmark (in-process, HTTP load, baselines, batcher on/off, 1 vs 2 workers): bench/results/<date>.{json,md}
[group('bench')]
bench *ARGS: bench-tools
    test -f artifacts/current || {{just_executable()}} model
    test -f data/scan_history.jsonl || {{python}} -m train.generate  # the baseline refits on it
    {{python}} -m bench.run {{ARGS}}

# the short benchmark guard CI runs (< 3 min): fails on a missed plan target or any errored request
[group('bench')]
bench-ci *ARGS: bench-tools
    test -f artifacts/current || {{just_executable()}} model
    {{python}} -m bench.run --ci {{ARGS}}

# monitoring on vs off (1 worker, interleaved on/off/on/off): /v1/predict req/s ratio, goal >= 0.97
[group('bench')]
bench-monitoring *ARGS: bench-tools
    test -f artifacts/current || {{just_executable()}} model
    {{python}} -m bench.run --monitoring {{ARGS}}

# profile one worker under wrk with py-spy: top frames by own samples and by scanopt stack share
[group('bench')]
profile *ARGS: bench-tools
    test -f artifacts/current || {{just_executable()}} model
    {{python}} -m bench.profile {{ARGS}}

# system calls per request of one worker under wrk (strace -c -f), load-independent: --env KEY=VALUE to change a setting
[group('bench')]
syscalls *ARGS: bench-tools
    test -f artifacts/current || {{just_executable()}} model
    {{python}} -m bench.syscalls {{ARGS}}

# instructions per request in process (callgrind): the constant endpoint, scanopt, and scanopt with each part off; repeatable on a busy machine
[group('bench')]
instructions *ARGS:
    command -v valgrind >/dev/null || [ "$(id -u)" != 0 ] || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind >/dev/null)
    test -f artifacts/current || {{just_executable()}} model
    {{python}} -m bench.instructions {{ARGS}}

# side by side: wrk req/s of the constant endpoint and of scanopt from this tree and from REF (a commit), interleaved rounds
[group('bench')]
compare REF *ARGS: bench-tools
    {{python}} -m bench.compare {{REF}} {{ARGS}}

# schemathesis on every endpoint of a private server's OpenAPI document, every check, thousands of cases: var/fuzz/
[group('test')]
fuzz *ARGS:
    test -f artifacts/current || {{just_executable()}} model
    {{python}} -m bench.fuzz {{ARGS}}

# 1,000 req/s of a realistic mix for 5 min against 2 workers: 0 errors, p95 <= 5 ms, flat RSS, store = acknowledged (not in CI)
[group('bench')]
soak *ARGS:
    test -f artifacts/current || {{just_executable()}} model
    {{python}} -m bench.soak {{ARGS}}

# promote and roll back under open-loop load (default 600 req/s, 2 workers, 2 s poll): errors, follow time, worst latency
[group('bench')]
bench-swap *ARGS:
    {{python}} -m bench.swap {{ARGS}}

# how often probation would roll back a good promotion (the default model) and catch a bad one, on generated traffic
[group('bench')]
bench-probation *ARGS:
    test -f artifacts/current || {{just_executable()}} model
    {{python}} -m bench.probation {{ARGS}}

# open-loop latency of the same load with and without a shadow version, interleaved rounds
[group('bench')]
bench-shadow *ARGS:
    {{python}} -m bench.shadow {{ARGS}}

# A/A validation of the experiment statistics (1,000 re-randomizations): exits 1 outside the bands
[group('bench')]
aa *ARGS:
    {{python}} -m bench.aa {{ARGS}}

# the report's statistics against GrowthBook's engine (gbstats) on generated data: exits 1 beyond 1e-6
[group('bench')]
parity *ARGS:
    {{python}} -m bench.gbstats_parity {{ARGS}}

# drift thresholds: false alarms on windows drawn from the reference and on time-ordered windows of a held-out year, detection of the stated shifts; exits 1 beyond 1% (--history-seed N: a validation year)
[group('bench')]
drift-check *ARGS:
    {{python}} -m bench.drift_check {{ARGS}}

# how much serving the time of day to the minute (the cache key) moves the model's answers
[group('bench')]
clock-rounding *ARGS:
    test -f artifacts/current || {{just_executable()}} model
    {{python}} -m bench.clock_rounding {{ARGS}}

# do the recommend suggestions land? top suggestion vs train.market's truth on generated scans; exits 1 below 80%, on a duplicate or no-op, or p95 > 20 ms
[group('bench')]
suggestions *ARGS:
    test -f artifacts/current || {{just_executable()}} model
    {{python}} -m bench.suggestions {{ARGS}}

# the A/B test end to end: a private server, 2,000 simulated scanner users over HTTP, the report; exits 1 unless empty scans drop >= 30% at p < 0.01 without SRM
[group('bench')]
simulate *ARGS:
    test -f artifacts/current || {{just_executable()}} model
    {{python}} -m bench.simulate {{ARGS}}

# the model lifecycle end to end: shift the world, the app's alerts fire, retrain, promote, MAE before and after (--shift, --users, --quick)
[group('bench')]
loop *ARGS:
    test -f artifacts/current || {{just_executable()}} model
    test -f data/scan_history.jsonl || {{python}} -m train.generate
    {{python}} -m bench.loop {{ARGS}}
