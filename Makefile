# The project's entry points. `make demo` runs the main job on the built-in default; `make test`
# runs the tests (CI runs exactly that, through .ci/run).
GO       ?= go
BIN      ?= bin
PKG      := github.com/cpo-toolchain/cpo
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X $(PKG)/pkg/cliutil.Version=$(VERSION) -X $(PKG)/pkg/cliutil.Commit=$(COMMIT)
TOOLS    := $(notdir $(wildcard tools/cpo-*))
FUZZTIME ?= 60s

.PHONY: all build test lint bench demo check-duckdb check-checkpoint check-tokenizer goldens deps fuzz clean help
all: build

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

build: ## build every tool into bin/
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ ./tools/...

test: ## vet and run every test (what CI runs), then the numeric packages again on the plain Go fallbacks
	$(GO) vet ./...
	GOARCH=arm64 $(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...
	CPO_NOASM=1 $(GO) test -count=1 -timeout 10m ./pkg/gemm ./pkg/simd ./pkg/model ./pkg/optim ./pkg/loss ./pkg/train

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench: build ## every speed table, ours beside OpenBLAS/PyTorch/HF where they exist (long; not CI)
	bash scripts/bench/all.sh

fuzz: ## run every fuzz target for FUZZTIME each
	@for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' pkg | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$spec/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "== $$spec $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) ./$$spec || exit 1; \
	  done; done

check-duckdb: build ## read shards written by the tools with DuckDB (needs npm)
	bash scripts/duckdb/check.sh

check-checkpoint: ## our checkpoints against transformers' layout and a float64 PyTorch forward
	sh scripts/checkpoint/check_ours.sh

check-tokenizer: ## ids against Hugging Face and spm_encode on ~9 MB of text (needs npm, sentencepiece)
	cd scripts/tokenizer && npm install --no-audit --no-fund >/dev/null && ./check_large.sh

goldens: ## regenerate every golden file from the independent references (PyTorch, HF tokenizers, spm)
	/usr/bin/python3 scripts/reference/make_golden.py testdata/golden/model
	/usr/bin/python3 scripts/reference/train_golden.py
	/usr/bin/python3 scripts/reference/generate_golden.py
	/usr/bin/python3 scripts/checkpoint/make_safetensors_golden.py
	/usr/bin/python3 scripts/checkpoint/hf_checkpoints.py write
	cd scripts/tokenizer && npm install --no-audit --no-fund >/dev/null && node gen_gpt2_goldens.js && ./gen_sp_goldens.sh && node gen_sp_hf_goldens.js

deps: ## install the Debian packages the reference scripts and benchmarks use (not needed for build/test/demo)
	apt-get update -qq && apt-get install -y -qq python3-torch python3-numpy python3-threadpoolctl libopenblas0-pthread sentencepiece nodejs npm

demo: build ## the main job on the built-in default, on the CPU
	bash pipelines/demo.sh

clean:
	rm -rf $(BIN) demo-out

# The CUDA backend's targets (cuda, gpu-check); the default build never needs CUDA.
include mk/cuda.mk
