from .engine import __version__  # noqa: F401  (the engine holds it: it imports nothing above)
