"""The package's version, declared once: pyproject.toml reads it (hatch), the User-Agent sends it."""

__version__ = "0.2.0"
