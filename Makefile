# Tessera: `make demo` installs, builds and runs the quickstart; `make test` runs the whole suite.
SWIFT ?= swift
DEBIAN_PACKAGES := libpng-dev libjpeg-dev zlib1g-dev libtiff-dev libopenmpi-dev openmpi-bin
# The suite also renders report.html in headless Chromium (about 1 minute to install) and compiles the C kernels
# for aarch64 against Debian's cross C headers (NEON check, no cross compiler needed: clang comes with Swift).
TEST_PACKAGES := chromium-headless-shell libc6-dev-arm64-cross
BENCH_VENV ?= .build-bench-venv

.PHONY: deps build test lint format demo bench clean

# Installs the Debian packages the build needs (and, for `make test`, the suite's), only those missing.
deps:
	@missing=""; for p in $(DEBIAN_PACKAGES) $(EXTRA_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build -c release

# The build refuses a module imported without being declared a dependency of its target in Package.swift (checked
# on every file it compiles: all of them on a clean clone, as CI builds).
test: lint
	@$(MAKE) --no-print-directory deps EXTRA_PACKAGES="$(TEST_PACKAGES)"
	$(SWIFT) build -c release --build-tests --explicit-target-dependency-import-check error
	@# A plan cache of the suite's own, so a test run neither reads nor writes the user's (~/.cache/tessera).
	cache=$$(mktemp -d) && TESSERA_PLAN_CACHE=$$cache/conv-plans.json $(SWIFT) test -c release --skip-build \
		--disable-swift-testing; status=$$?; rm -rf "$$cache"; exit $$status

# swift-format (part of the toolchain) with the committed .swift-format: lint fails on any difference; format fixes.
lint:
	$(SWIFT) format lint --strict -r Sources Tests Package.swift

format:
	$(SWIFT) format -i -r Sources Tests Package.swift

# Trains a small U-Net on the generated samples, segments and explains them, writes runs/quickstart/report.html.
demo: build
	.build/release/tessera run pipelines/quickstart.yaml

# Tessera's benchmark and PyTorch's on the same work, side by side (PyTorch in a throw-away virtualenv).
bench: build
	@[ -x $(BENCH_VENV)/bin/python ] || (python3 -m venv $(BENCH_VENV) && $(BENCH_VENV)/bin/pip install -q torch torchvision numpy onnx onnxruntime)
	$(BENCH_VENV)/bin/python Benchmarks/compare.py --tessera .build/release/tessera $(BENCH_ARGS)

clean:
	rm -rf .build
