"""The QIIME 2 framework under either of its names: `qiime2` (to 2025) or `rachis` (2026 on).

Every QIIME 2 import of the plugin goes through here, so a rename is handled in one place.
"""
try:
    import qiime2 as framework
    import qiime2.plugin as plugin_api
    import qiime2.plugin.model as model
except ImportError:  # pragma: no cover - only on a framework without the qiime2 name
    import rachis as framework
    import rachis.plugin as plugin_api
    import rachis.plugin.model as model

__all__ = ["framework", "plugin_api", "model"]
