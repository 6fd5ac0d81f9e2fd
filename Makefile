# Top-level entry points. The first target that needs Python creates .venv and installs
# requirements.txt into it (once; nothing to do on later calls).
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)
NET    ?= conv2x
# the network's folder, from the registry in common/network.py
NET_DIR = $(shell $(PY) -c "from common.network import folder_of; print(folder_of('$(NET)'))")

.PHONY: all venv run_py test pytest lit bench clean features studies

all: venv
	$(MAKE) -C $(NET_DIR) PYTHON=$(abspath $(PY))

$(STAMP): requirements.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	@touch $(STAMP)

venv: $(STAMP)

features: venv
	$(PY) -m common.hw

run_py: venv
	$(MAKE) -C $(NET_DIR) run_py PYTHON=$(abspath $(PY))

# lit first, pytest last (its summary is the last line); either failing fails the target.
test: venv
	@status=0; \
	$(VENV)/bin/lit -sv tests/lit || status=1; \
	$(PY) -m pytest || status=1; \
	exit $$status

pytest: venv
	$(PY) -m pytest

lit: venv
	$(VENV)/bin/lit -sv tests/lit

bench: venv
	$(PY) -m common.bench --out bench-results.txt

# Small versions of the three quantization studies (LeNet-5 on the embedded MNIST subset;
# the shipped checkpoint unless LENET_CHECKPOINT=... says otherwise). Outputs under studies-out/
LENET_CHECKPOINT ?= lenet_npu/checkpoints/lenet_mnist.pt
STUDY_ARGS = --net lenet --dataset mnist --data-dir data/mnist --checkpoint $(LENET_CHECKPOINT) --quick
studies: venv
	$(PY) -m common.studies sweep $(STUDY_ARGS) --out studies-out/sweep-lenet-mnist
	$(PY) -m common.studies formats $(STUDY_ARGS) --out studies-out/formats-lenet-mnist
	$(PY) -m common.studies fxp-search $(STUDY_ARGS) --out studies-out/fxp-lenet-mnist

clean:
	rm -rf build .pytest_cache .hypothesis bench-results.txt studies-out
	find tests/lit -name Output -type d -prune -exec rm -rf {} +
	$(MAKE) -C ptq_conv2x clean
	$(MAKE) -C lenet_npu clean
