"""The tilesim version, in one place (pyproject.toml reads it: ``dynamic = ["version"]``).

A leaf module (imports nothing of ours), so every package allowed to record the version
(``explore``'s sweep store and reports, the façade) can import it without importing the
façade ``tilesim/__init__.py``. Semver for the numbers: a change to any model output bumps
at least the minor version (a resumed sweep refuses rows of another version).
"""
__version__ = "0.8.0"
