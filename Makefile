# The two commands: `make run` and `make test`. Each installs what is missing,
# configures and builds first. Other targets: build, bench, deps, clean.
BUILD_DIR ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
CTEST_ARGS ?=
RUN_ARGS ?=

.PHONY: all deps configure build test run bench clean

all: build

deps:
	@ops/install-deps.sh

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS)

configure: deps $(BUILD_DIR)/CMakeCache.txt

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Every test: unit and integration; GPU tests skip with a message where no GPU is.
test: build
	cd $(BUILD_DIR) && ctest --output-on-failure --timeout 300 -j $(JOBS) $(CTEST_ARGS)

run: build
	$(BUILD_DIR)/freshet run $(RUN_ARGS)

# Benchmarks print one JSON object as their last line; see docs/benchmarks.md.
bench: build
	@ops/install-deps.sh --bench
	@bench/run_all.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR)
