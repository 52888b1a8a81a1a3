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

.PHONY: all build test lint bench demo check-duckdb fuzz clean help
all: build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

build: ## build every tool into bin/
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ ./tools/...

test: ## vet and run every test (what CI runs)
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench: build ## print the benchmark tables (long; not part of CI)
	$(GO) test -run '^$$' -bench 'Shard' -benchtime 3x ./pkg/shard

fuzz: ## run every fuzz target for FUZZTIME each
	@for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' pkg | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$spec/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "== $$spec $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) ./$$spec || exit 1; \
	  done; done

check-duckdb: build ## read shards written by the tools with DuckDB (needs npm)
	bash scripts/duckdb/check.sh

demo: build ## the main job on the built-in default, on the CPU
	bash pipelines/demo.sh

clean:
	rm -rf $(BIN) demo-out
