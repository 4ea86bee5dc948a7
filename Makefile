# ordo: run `make help` for the targets.
GO ?= go
BIN := bin
GOFLAGS_TEST ?= -count=1 -timeout 40m
FUZZTIME ?= 10s
CHAOS_DURATION ?= 5m
CHAOS_SEED ?=

.PHONY: help build test test-short fuzz lint dev bench chaos clean sdk-deps

help: ## show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

build: ## build every program into ./bin
	$(GO) build -o $(BIN)/ ./cmd/...

test: build sdk-deps ## run every test against throwaway Postgres clusters (needs Go, PostgreSQL server binaries or Docker, node and chromium)
	$(GO) vet ./...
	$(GO) test $(GOFLAGS_TEST) ./...
	$(MAKE) fuzz

sdk-deps: ## install the npm packages of the browser and SDK tests (sdktest/, e2e/browser/) unless installed from the current lock file
	@for d in sdktest e2e/browser; do \
	  if ! command -v npm >/dev/null; then \
	    echo "npm is missing: the tests in $$d will fail (apt-get install -y nodejs npm)"; break; \
	  elif [ ! $$d/node_modules/.package-lock.json -nt $$d/package-lock.json ]; then \
	    (cd $$d && npm ci --no-audit --no-fund) || exit 1; \
	  fi; \
	done

fuzz: ## run each fuzz test for FUZZTIME (default 10s)
	@grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' . | sed 's/:func /:/' | while IFS=: read -r file fn; do \
	  echo "fuzz $$(dirname $$file) $$fn"; \
	  $(GO) test ./$$(dirname $$file) -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

chaos: ## inject random faults for CHAOS_DURATION (5m) under traffic, then check every delivery; CHAOS_SEED=n replays a run
	ORDO_CHAOS_SEED=$(CHAOS_SEED) ORDO_CHAOS_DURATION=$(CHAOS_DURATION) $(GO) test ./e2e -run '^TestChaos$$' -count=1 -v -timeout 90m

lint: ## gofmt, go vet, and golangci-lint when installed
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo 'run gofmt -w on the files above'; exit 1; }
	$(GO) vet ./...
	@if command -v golangci-lint >/dev/null; then golangci-lint run; else echo 'golangci-lint not installed: skipped'; fi

dev: build ## start a local cluster: 2 throwaway Postgres nodes, gateway, 2 workers, demo sink
	$(BIN)/ordo-dev $(DEV_FLAGS)

bench: build ## measure ingest, delivery, wake-up, idle cost and moves against raw COPY and River (BENCH_FLAGS=-quick: a minute)
	$(GO) run ./bench $(BENCH_FLAGS)

clean: ## remove ./bin
	rm -rf $(BIN)
