"""The engine: every computation of q2-taxdistill on plain inputs (numpy, pandas, torch), with
no QIIME 2 import, so the same code runs on a GPU machine without QIIME 2. The QIIME 2
adapter (`q2_taxdistill`) imports it; it imports nothing of the adapter (see
docs/ARCHITECTURE.md; `tests/test_layout.py` checks both)."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("q2-taxdistill")
except PackageNotFoundError:  # run from a source tree that is not installed
    __version__ = "0.1.0"
