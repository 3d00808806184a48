# Thin wrapper over meson: `make build`, `make demo`, `make check`.
BUILD ?= build
MESON_OPTS ?=

.PHONY: all build demo check setup bench format format-check clean

all: build

setup:
	@./scripts/setup.sh

$(BUILD)/build.ninja:
	@./scripts/setup.sh
	meson setup $(BUILD) $(MESON_OPTS)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

demo: build
	@./scripts/demo.sh $(BUILD)

check: build
	meson test -C $(BUILD) --print-errorlogs

bench: build
	@./bench/spawn.py --warren $(BUILD)/warren --lib $(BUILD)/bench/bench-spawn
	@./bench/node.py --warren $(BUILD)/warren

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)
