"""The package version, importable from any subpackage without running ``rfprior/__init__``."""

__version__ = "0.1.0"
