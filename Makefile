# ror — the two commands of the README, and the developer targets around them.
#   make run    install what is missing, build, start the server on a demo region
#   make test   the same set-up, then every test (unit, sanitizer build, black-box)
BUILD ?= build
JOBS ?= $(shell nproc)
PORT ?= 8080
DATA ?= ror-data

.PHONY: all run test build build-asan build-tsan unit blackbox tsan bench fuzz format clean

all: build

build:
	scripts/setup.sh
	cmake -S . -B $(BUILD)/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD)/release -j$(JOBS)

run: build
	scripts/demo-accounts.sh $(BUILD)/release/src/ror $(DATA)
	$(BUILD)/release/src/ror serve --data $(DATA) --port $(PORT) --seed data/demo/demo-region.json

build-asan:
	scripts/setup.sh test
	cmake -S . -B $(BUILD)/asan -DCMAKE_BUILD_TYPE=Debug -DROR_SANITIZE=ON >/dev/null
	cmake --build $(BUILD)/asan -j$(JOBS)

build-tsan:
	scripts/setup.sh test
	cmake -S . -B $(BUILD)/tsan -DCMAKE_BUILD_TYPE=Debug -DROR_TSAN=ON >/dev/null
	cmake --build $(BUILD)/tsan -j$(JOBS)

# Every test runs on the ASan+UBSan build: unit tests and the black-box suite (server included);
# then the unit tests under ThreadSanitizer (writer thread, reader pool, group commit), a short
# run of every fuzz target, and last the unit tests on the release build.
test: build build-asan build-tsan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ROR_IMPORT_BIN=$(abspath $(BUILD)/release/src/ror) \
	  ctest --test-dir $(BUILD)/asan --output-on-failure -j2
	TSAN_OPTIONS=halt_on_error=1 ctest --test-dir $(BUILD)/tsan --output-on-failure -L unit -j2
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(or $(FUZZ_SECONDS),10)
	ctest --test-dir $(BUILD)/release --output-on-failure -L unit -j2

unit: build-asan
	ctest --test-dir $(BUILD)/asan --output-on-failure -L unit -j2

tsan: build-tsan
	TSAN_OPTIONS=halt_on_error=1 ctest --test-dir $(BUILD)/tsan --output-on-failure -j2

blackbox: build build-asan
	ROR_IMPORT_BIN=$(abspath $(BUILD)/release/src/ror) \
	  ctest --test-dir $(BUILD)/asan --output-on-failure -L blackbox

bench: build
	scripts/setup.sh bench
	bench/run.sh
	bench/import.sh

fuzz:
	scripts/setup.sh test
	CC=clang cmake -S . -B $(BUILD)/fuzz -DCMAKE_BUILD_TYPE=Debug -DROR_FUZZ=ON >/dev/null
	cmake --build $(BUILD)/fuzz -j$(JOBS) --target fuzz_json fuzz_search fuzz_fhirpath fuzz_finess fuzz_rpps fuzz_jwt fuzz_visibility
	tests/fuzz/run.sh $(BUILD)/fuzz $(or $(FUZZ_SECONDS),60)

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h')

clean:
	rm -rf $(BUILD)
