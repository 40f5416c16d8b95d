# Vigil. `make` or `make help` lists the targets. `make run` and `make test` set up what they
# need on a fresh machine (PostgreSQL through bash .ci/ensure-postgres, Mailpit through .ci/dev-run).

export PATH := /usr/local/go/bin:$(PATH)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PKGS ?= ./...
TESTFLAGS ?=
BENCHFLAGS ?=

# Packages that must never reach domain/ (DESIGN.md §3: domain is pure).
DOMAIN_FORBIDDEN := jackc/pgx|labstack/echo|nats-io|rs/zerolog|wneessen

# The test server: VIGIL_TEST_DATABASE_URL or DATABASE_ADMIN_URL if it answers, else a local
# PostgreSQL that bash .ci/ensure-postgres finds or starts. Fails loudly if there is none.
define test_db
url="$$(DATABASE_ADMIN_URL="$${VIGIL_TEST_DATABASE_URL:-$${DATABASE_ADMIN_URL:-}}" bash .ci/ensure-postgres)" || { \
	echo "make: no PostgreSQL for the tests: .ci/ensure-postgres failed (see above)" >&2; exit 1; }; \
export VIGIL_TEST_DATABASE_URL="$$url"; \
echo "VIGIL_TEST_DATABASE_URL=$$url" >&2
endef

# Linters, run with `go run` at these versions (fetched through the module proxy once).
STATICCHECK_VERSION := v0.8.2
GOSEC_VERSION := v2.30.0
GOVULNCHECK_VERSION := v1.9.0

.PHONY: help build run test bench bench-api bench-notify bench-pipeline bench-overhead bench-scheduler bench-extract bench-history bench-http fuzz test-faults lint vulncheck migrate up down clean

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## .*$$' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "\033[36m%-10s\033[0m %s\n", $$1, $$2}'

build: ## Build bin/vigil
	go build -o bin/vigil ./cmd/vigil

run: ## Run everything locally: PostgreSQL, Mailpit, migrations, seed, `vigil all`
	bash .ci/dev-run

test: ## Run the tests (race detector, real PostgreSQL, headless Chromium); PKGS=./domain/... TESTFLAGS=-v
	@$(test_db); \
	chromium="$$(bash .ci/ensure-chromium)" || { echo "make: no Chromium for the email rendering tests (see above)" >&2; exit 1; }; \
	export VIGIL_CHROMIUM="$$chromium" VIGIL_TEST_ARTIFACTS="$${VIGIL_TEST_ARTIFACTS:-$(CURDIR)/data/test-artifacts}"; \
	echo "VIGIL_CHROMIUM=$$chromium; screenshots in $$VIGIL_TEST_ARTIFACTS" >&2; \
	go test -race -count=1 -timeout 45m $(TESTFLAGS) $(PKGS)

bench: ## Run the benchmarks (real PostgreSQL); PKGS=... BENCHFLAGS='-benchtime 5s'
	@$(test_db); \
	go test -run '^$$' -bench . -benchmem -timeout 45m $(BENCHFLAGS) $(PKGS)

bench-api: build ## Monitor API latency on 10,000 monitors and 1,000,000 evaluations (vigil bench api)
	@DATABASE_URL="$${DATABASE_URL:-$$(bash .ci/ensure-postgres)}" bin/vigil bench api

bench-notify: build ## State change to SMTP accept and to webhook 2xx, 1,000 then 5,000 at once (vigil bench notify)
	@DATABASE_URL="$${DATABASE_URL:-$$(bash .ci/ensure-postgres)}" bin/vigil bench notify

bench-pipeline: build ## Evaluations per second end to end at 10,000 and 100,000 monitors, then with a state change and an email each (vigil bench pipeline)
	@DATABASE_URL="$${DATABASE_URL:-$$(bash .ci/ensure-postgres)}" bin/vigil bench pipeline -monitors 10000,100000 && \
	DATABASE_URL="$${DATABASE_URL:-$$(bash .ci/ensure-postgres)}" bin/vigil bench pipeline -monitors 10000 -changes

bench-overhead: build ## Orchestration overhead per evaluation at 1,000 a second offered (vigil bench pipeline -rate 1000)
	@DATABASE_URL="$${DATABASE_URL:-$$(bash .ci/ensure-postgres)}" bin/vigil bench pipeline -monitors 10000 -rate 1000

bench-scheduler: build ## Scheduler claim rate over 1,000,000 monitors (vigil bench scheduler)
	@DATABASE_URL="$${DATABASE_URL:-$$(bash .ci/ensure-postgres)}" bin/vigil bench scheduler -monitors 1000000

bench-history: build ## History routes' latency at 10,000,000 then 50,000,000 facts, and export throughput (vigil bench history)
	@DATABASE_URL="$${DATABASE_URL:-$$(bash .ci/ensure-postgres)}" bin/vigil bench history

bench-http: build ## HTTP load with vegeta: 1,000 connections on get, list and history as 1,000 users, beside a minimal Echo+pgx ceiling (vigil bench http)
	@DATABASE_URL="$${DATABASE_URL:-$$(bash .ci/ensure-postgres)}" bin/vigil bench http

bench-extract: ## Extraction per page over the saved-page corpus, and rendered pages per minute with one browser; 3 runs each
	go test -run '^$$' -bench ExtractCorpus -count 3 ./adapters/ai/fallback/
	@chromium="$${VIGIL_CHROMIUM:-$$(bash .ci/ensure-chromium)}" || { echo "make: no Chromium for the rendering benchmark" >&2; exit 1; }; \
	VIGIL_CHROMIUM="$$chromium" go test -run '^$$' -bench Render -benchtime 40x -count 3 ./adapters/render/

test-faults: ## Fault tests (minutes; not in make test): role processes killed at random, NATS killed and restarted, PostgreSQL stopped and restarted, each under a running pipeline
	@$(test_db); \
	VIGIL_FAULTS=1 go test -count=1 -run '^(TestRolesKilledAtRandom|TestNATSKilledAndRestarted|TestPostgresOutage)$$' -v -timeout 20m ./cmd/vigil/ | grep -E '^(=== RUN|--- |\s+faults_test|PASS|FAIL|ok)'

FUZZ_TIME ?= 5m
FUZZ_TARGETS := ./adapters/source:FuzzPublic ./adapters/ai/fallback:FuzzClassify ./adapters/ai/fallback:FuzzExtract ./adapters/ai/fallback:FuzzReadNumber

fuzz: ## Fuzz longer than make test does: the HTTP API from its OpenAPI document, then each Go fuzz target, FUZZ_TIME each (5m)
	@$(test_db); \
	VIGIL_FUZZ_TIME=$(FUZZ_TIME) go test -count=1 -run '^TestFuzzHTTPAPI$$' -v -timeout 2h ./adapters/httpapi/ | grep -E 'seed|requests over|FAIL|PASS|ok'
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz: $${t#*:} in $${t%%:*} for $(FUZZ_TIME)"; \
		go test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZ_TIME) "$${t%%:*}" || exit 1; \
	done

lint: ## gofmt, go vet, staticcheck, gosec (medium and high), domain/ purity, govulncheck when its database answers (and shellcheck .ci/ if installed)
	@out="$$(gofmt -l .)"; \
	if [ -n "$$out" ]; then echo "gofmt: these files need formatting (gofmt -w):" >&2; echo "$$out" >&2; exit 1; fi
	go vet ./...
	go run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	@# Every finding of medium or high severity is fixed or carries a #nosec comment with its reason.
	go run github.com/securego/gosec/v2/cmd/gosec@$(GOSEC_VERSION) -quiet -severity medium -exclude-generated ./...
	@$(MAKE) --no-print-directory vulncheck
	@deps="$$(go list -deps ./domain/...)"; \
	bad="$$(grep -E '$(DOMAIN_FORBIDDEN)' <<<"$$deps" || true)"; \
	if [ -n "$$bad" ]; then echo "domain/ must stay pure, but it depends on:" >&2; echo "$$bad" >&2; exit 1; fi; \
	echo "domain/ is pure"
	@if command -v shellcheck >/dev/null; then shellcheck .ci/*; else echo "shellcheck not installed; skipped"; fi

migrate: build ## Apply the migrations to the dev database (DATABASE_URL, else ensure-postgres)
	@url="$${DATABASE_URL:-$$(bash .ci/ensure-postgres --create-db vigil)}"; \
	DATABASE_URL="$$url" bin/vigil migrate up

up: ## Start the stack with docker compose (one process per role)
	docker compose up -d --build

down: ## Stop the docker compose stack
	docker compose down

clean: ## Stop the private PostgreSQL (if any) and remove bin/ and data/
	@if [ -d data ]; then bash .ci/ensure-postgres --stop; fi
	rm -rf bin data

vulncheck: ## Known vulnerabilities in the dependencies (govulncheck); says so and passes when its database cannot be reached
	@if curl -sfm 10 -o /dev/null https://vuln.go.dev/index/db.json; then \
		go run golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION) ./...; \
	else \
		echo "govulncheck: skipped: its database (https://vuln.go.dev) cannot be reached from here; run make vulncheck where it can" >&2; \
	fi
