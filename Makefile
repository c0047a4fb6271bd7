# Portcullis. Everything the build needs comes from go.mod and tools/go.mod
# by pinned version: a fresh machine needs only Go.
SHELL := /bin/bash
GO    ?= go
TOOL  := $(GO) tool -modfile=tools/go.mod
BIN   := bin/portcullis
DATA  ?= ./data

.PHONY: run build test lint generate check-generated vet gotest bench breaking fuzz fuzz-short

## run: build and start the authority on ./data (bbolt), loopback only
run: build
	$(BIN) serve --data $(DATA)

build:
	$(GO) build -o $(BIN) ./cmd/portcullis

## test: everything CI checks
test: lint check-generated vet gotest fuzz-short

lint:
	$(TOOL) buf lint
	@files="$$(gofmt -l $$(git ls-files '*.go'))"; test -z "$$files" || { echo "not gofmt-formatted (run gofmt -w):"; echo "$$files"; exit 1; }

generate:
	$(TOOL) buf generate

## check-generated: gen/ must be exactly what buf generates from proto/
check-generated: generate
	@git diff --exit-code -- gen/ || { echo "gen/ is out of date: run 'make generate' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- gen/)" || { git status --porcelain -- gen/; echo "gen/ has files buf did not generate or that are not committed"; exit 1; }

vet:
	$(GO) vet ./...

gotest:
	$(GO) test -race -count=1 -timeout 12m ./...

## breaking: compare the API with main's last commit
breaking:
	$(TOOL) buf breaking --against '.git#branch=main'

## bench: durable write throughput (see BENCHMARKS.md)
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./internal/storage/bolt ./server
	$(GO) run ./bench -mirrors 1,10,100 -ops 50 -callers 1,16,64 -duration 2s

## fuzz targets (issue 5): package:FuzzName. Their seed corpora run in
## gotest; fuzz-short (part of test) fuzzes each for FUZZTIME_SHORT, fuzz
## for FUZZTIME.
FUZZ_TARGETS := \
	./token:FuzzVerify ./token:FuzzForgery \
	./internal/authority:FuzzParseDuration ./internal/authority:FuzzParseSubjectIP \
	./internal/authority:FuzzPageToken ./server:FuzzWatchResume \
	./internal/storage:FuzzBanDecoder
FUZZTIME_SHORT ?= 3s
FUZZTIME       ?= 30s

fuzz-short:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} ($${t%%:*}) $(FUZZTIME_SHORT)"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME_SHORT) "$${t%%:*}"; \
	done

## fuzz: each fuzz target for FUZZTIME (30s)
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} ($${t%%:*}) $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; \
	done
