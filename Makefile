# Thin wrapper over meson: the real build is meson.build.
#   make            configure (once) and build into build/
#   make test       install deps if missing, build, run every test
#   make bench      install deps if missing, build, run SCENARIO (default seed-2012);
#                   writes its charts and HTML page and prints the page's path
#   make report     the HTML page of RESULT (default: the newest run); against
#                   BASELINE when one is given on the command line
#   make compare    compare BASELINE with NEW (default: the ci baseline and the last ci run)
#   make baseline   refresh every baseline the CI gate reads (results/baseline/): ci.json
#                   from a fresh ci run, icount.json; with CALIBRATE=N (10 or more) also
#                   noise.json from N more runs (results/REGRESSION.md, "Using it")
#   make trend      chart results/history.jsonl
#   make fuzz       run every libFuzzer target SECONDS (default 60) in a clang build
#   make soak       run both workers under mixed load and faults, watching RSS and fds
#   make clean      remove build/
BUILD ?= build
MESONFLAGS ?=
SCENARIO ?= seed-2012
BASELINE ?= results/baseline/ci.json
NEW ?= results/ci/latest.json

.PHONY: all deps test bench plots report compare baseline trend fuzz soak clean

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESONFLAGS)

deps:
	scripts/deps

test: deps
	$(MAKE) all
	meson test -C $(BUILD) --print-errorlogs $(TESTFLAGS)

bench: deps
	$(MAKE) all
	scripts/bench $(SCENARIO)

plots: all
	scripts/plot $(RESULT)

# BASELINE has a default for `make compare`; the page compares only when it is given.
REPORT_BASELINE = $(if $(filter command line environment override,$(origin BASELINE)),$(BASELINE))
report: all
	scripts/report $(if $(REPORT_BASELINE),$(or $(RESULT),$(error make report: give RESULT=... with BASELINE=...)) $(REPORT_BASELINE),$(RESULT))

compare: all
	scripts/compare $(BASELINE) $(NEW)

baseline: deps
	$(MAKE) all
	scripts/baseline --build $(BUILD) $(if $(CALIBRATE),--calibrate $(CALIBRATE),)

trend:
	scripts/trend

fuzz:
	scripts/deps --fuzz
	scripts/fuzz $(or $(SECONDS),60)

soak: all
	scripts/soak --build $(BUILD) $(if $(SECONDS),--seconds $(SECONDS),)

clean:
	rm -rf $(BUILD)
