# Thin wrapper over meson: the real build is meson.build.
#   make            configure (once) and build into build/
#   make test       install deps if missing, build, run every test
#   make bench      install deps if missing, build, run SCENARIO (default seed-2012)
#   make clean      remove build/
BUILD ?= build
MESONFLAGS ?=
SCENARIO ?= seed-2012

.PHONY: all deps test bench plots compare clean

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

compare: all
	scripts/compare $(BASELINE) $(NEW)

clean:
	rm -rf $(BUILD)
