"""The package version, apart from __init__.py so that modules the package imports can read it."""
__version__ = "0.1.0"
