"""Quantization studies on the networks the project deploys.

``python -m common.studies {sweep,formats,fxp-search} --net {lenet,conv2x}``:
  sweep       Brevitas PTQ at 1..8 bits in three schemes (sweep.py)
  formats     storage of layer inputs (and weights) in other number formats (formats.py)
  fxp-search  per-layer fixed-point search with cost metrics, arXiv 2102.02147 (fxp.py)
Each study writes CSV, PNG and a Markdown summary into one folder (report.py); independent
configurations run in parallel and are cached so that an interrupted study resumes
(runner.py). The network lookup is ``nets.network_for``.
"""


class StudyError(RuntimeError):
    """A study cannot run as asked (bad option, missing checkpoint, empty data ...)."""
