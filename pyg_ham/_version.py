"""The package version (one place: ``pyg_ham.__version__``, ``setup.py`` and result provenance read it)."""
__version__ = "0.1.0"
