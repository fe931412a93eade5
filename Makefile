# Set-up and checks. `make demo` and `make test` work on a fresh Debian
# machine with Python 3.11; `make test` installs missing system packages.

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
# system packages the test-suite drives for real (waveform viewer, RTL sim)
APT_PACKAGES := gtkwave xvfb iverilog iproute2 iptables podman runc

.PHONY: demo test venv lint bench clean sysdeps

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	@mkdir -p out
	$(VENV)/bin/tidesim run --vcd out/hitl8.vcd --decimate 25 --plot out/hitl8.png

sysdeps:
	@missing=""; \
	for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null \
	    || echo "make: could not install$$missing (tests that need them will fail)"; \
	fi

test: $(STAMP) sysdeps
	$(VENV)/bin/ruff check tidesim tests benchmarks
	$(PY) -m pytest -q

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do $(PY) $$b; done

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
