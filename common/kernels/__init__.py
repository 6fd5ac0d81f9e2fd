"""NPU kernels: C++ sources (AIE vector path + portable host path) and host bindings.

``from common.kernels.host import host_kernel_table, load_library`` builds
``build/host/libnpu_kernels.so`` on first use.
"""
