# Body of every network's Makefile. The network's Makefile sets, then includes this file:
#   NET        registry name (common/network.py), e.g. conv2x
#   NET_PKG    Python package of the network folder, e.g. ptq_conv2x
#   DEFAULT_DATASET, DATASET: the network's default dataset and the one asked for
#   CHECKPOINT the checkpoint for DATASET (relative to the folder); PTQ_ARGS, DESIGN_ARGS
#   NET_SRC    the network's own Python sources the bundle depends on
# Targets: all (bundle + host kernels [+ xclbin with mlir-aie]), bundle, host_kernels,
# run_py, onnx, clean. Variables: ROUNDING=half_even|half_up IMAGES=300 DEVICE=npu|npu2
# CALIB=N (calibration images; default: the network's) EXTRA='more test.py options'.
PYTHON   ?= python3
ROUNDING ?= half_even
IMAGES   ?= 300
DEVICE   ?= npu
CALIB    ?=
CALIB_ARG = $(if $(CALIB),--calib-images $(CALIB))
BUILD    := build
BUNDLE   := $(BUILD)/$(NET)$(if $(filter-out $(DEFAULT_DATASET),$(DATASET)),_$(DATASET))_$(ROUNDING).npz
ROOT     := $(abspath ..)
export PYTHONPATH := $(ROOT)

HAVE_AIE   := $(shell $(PYTHON) -c "from common.hw import has_mlir_aie; print(int(has_mlir_aie()))" 2>/dev/null)
HAVE_AIECC := $(shell command -v aiecc.py >/dev/null 2>&1 && echo 1)
PEANO      ?= $(PEANO_INSTALL_DIR)
KERNEL_SRC := $(wildcard $(ROOT)/common/kernels/*.cc $(ROOT)/common/kernels/*.h)
PIPELINE_SRC := $(addprefix $(ROOT)/common/,pipeline.py network.py ptq.py quant.py bundle.py)

.PHONY: all bundle host_kernels run_py onnx clean no_toolchain

all: bundle host_kernels $(if $(and $(filter 1,$(HAVE_AIE)),$(HAVE_AIECC)),$(BUILD)/final.xclbin,no_toolchain)

bundle: $(BUNDLE)

# The bundle depends on the checkpoint and the PTQ code; test.py checks it is not stale.
$(BUNDLE): $(CHECKPOINT) $(NET_SRC) $(PIPELINE_SRC)
	$(PYTHON) -m $(NET_PKG).ptq --checkpoint $(CHECKPOINT) --rounding $(ROUNDING) \
	    $(CALIB_ARG) $(PTQ_ARGS) --out $@

host_kernels:
	$(PYTHON) -c "from common.kernels.host import load_library; load_library()"

no_toolchain:
	@echo "NOTE: mlir-aie (IRON) $(if $(filter 1,$(HAVE_AIE)),found,NOT installed); aiecc.py $(if $(HAVE_AIECC),found,NOT on PATH)."
	@echo "NOTE: skipping MLIR -> xclbin. Built the deploy bundle and the host kernels, which is"
	@echo "      what the CPU emulator needs: 'make run_py' runs the same aie2.py there."

# ---- NPU build (needs mlir-aie + Peano; not verified on this machine) ----
$(BUILD)/aie.mlir: aie2.py $(BUNDLE)
	mkdir -p $(BUILD)
	$(PYTHON) aie2.py $(DEVICE) --bundle $(BUNDLE) $(DESIGN_ARGS) > $@.tmp && mv $@.tmp $@

$(BUILD)/npu_kernels.o: $(KERNEL_SRC)
	mkdir -p $(BUILD)/obj
	for f in $(ROOT)/common/kernels/*.cc; do \
	  $(PEANO)/bin/clang++ -O2 -std=c++20 --target=aie2-none-unknown-elf -DNDEBUG \
	    -I$(MLIR_AIE_INCLUDE_DIR) -c $$f -o $(BUILD)/obj/$$(basename $$f .cc).o || exit 1; \
	done
	$(PEANO)/bin/llvm-ar rcs $@ $(BUILD)/obj/*.o

$(BUILD)/final.xclbin: $(BUILD)/aie.mlir $(BUILD)/npu_kernels.o
	cd $(BUILD) && aiecc.py --aie-generate-xclbin --aie-generate-npu-insts --no-compile-host \
	  --no-xchesscc --no-xbridge --xclbin-name=final.xclbin --npu-insts-name=insts.bin aie.mlir

run_py: $(BUNDLE)
	$(PYTHON) test.py --images $(IMAGES) --rounding $(ROUNDING) --device $(DEVICE) $(CALIB_ARG) \
	    $(TEST_ARGS) $(EXTRA)

# Brevitas QCDQ export of the offloaded part, checked with ONNX Runtime (half_even only)
onnx: $(BUNDLE)
	$(PYTHON) -m $(NET_PKG).export_onnx $(PTQ_ARGS) --out $(BUILD)/$(NET)_qcdq.onnx

clean:
	rm -rf $(BUILD)
