# The two commands: `make run` and `make test`. Each installs what is missing,
# configures and builds first. Other targets: build, bench, fuzz, deps, clean.
BUILD_DIR ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
CTEST_ARGS ?=
RUN_ARGS ?=

.PHONY: all deps configure build test run bench fuzz asan clean

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

# libFuzzer targets (tests/fuzz/), built with clang in build-fuzz/ and run for a
# bounded time as the ctest label `fuzz`; not part of `make test`.
FUZZ_SECONDS ?= 60
fuzz: deps
	@command -v clang++ >/dev/null || { echo "make fuzz: clang++ not found; install it with: apt-get install clang" >&2; exit 1; }
	cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
	  -DFRESHET_FUZZ=ON -DFRESHET_CUDA=OFF -DFRESHET_BUILD_BENCH=OFF -DFRESHET_FUZZ_SECONDS=$(FUZZ_SECONDS)
	cmake --build build-fuzz -j $(JOBS) --target fuzz_targets
	cd build-fuzz && ctest --output-on-failure -L fuzz

# Every test built with AddressSanitizer and UndefinedBehaviorSanitizer in build-asan/
# (no CUDA, no benchmarks, glibc malloc: tcmalloc and ASan both replace malloc).
# About half an hour on 2 cores; not part of `make test`.
ASAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
asan: deps
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFRESHET_CUDA=OFF -DFRESHET_BUILD_BENCH=OFF \
	  -DFRESHET_TCMALLOC=OFF "-DCMAKE_CXX_FLAGS=$(ASAN_FLAGS)" "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined"
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure --timeout 600 -j $(JOBS) $(CTEST_ARGS)

clean:
	rm -rf $(BUILD_DIR) build-fuzz build-asan
