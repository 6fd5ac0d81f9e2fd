# lit configuration: features from common.hw, FileCheck from the filecheck package
# (or LLVM's FileCheck when installed), %python = the interpreter running lit.
import os
import shutil
import sys

import lit.formats

config.name = "npu-ptq"
config.test_format = lit.formats.ShTest()  # internal shell (external is deprecated in lit 23)
config.suffixes = [".test", ".py"]
config.excludes = ["lit.cfg.py", "Inputs"]
config.test_source_root = os.path.dirname(__file__)
repo = os.path.abspath(os.path.join(config.test_source_root, "..", ".."))
sys.path.insert(0, repo)
from common.hw import features  # noqa: E402

for f in sorted(features()):
    config.available_features.add(f)

bindir = os.path.dirname(sys.executable)
filecheck = shutil.which("FileCheck") or shutil.which("filecheck", path=bindir) \
    or shutil.which("filecheck")
if not filecheck:
    lit_config.fatal("no FileCheck: pip install filecheck (see requirements.txt)")
config.substitutions.append(("%python", sys.executable))
config.substitutions.append(("%repo", repo))
config.substitutions.append(("FileCheck", filecheck))
config.environment["PYTHONPATH"] = repo
config.environment["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
for var in ("HOME", "XILINX_XRT", "PEANO_INSTALL_DIR", "MLIR_AIE_INSTALL_DIR", "TMPDIR"):
    if var in os.environ:
        config.environment[var] = os.environ[var]
