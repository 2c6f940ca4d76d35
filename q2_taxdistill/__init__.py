from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("q2-taxdistill")
except PackageNotFoundError:
    __version__ = "0.1.0"
