"""The files a release ships (models, register maps, example configs), found where they are.

An installed wheel has no checkout around it, so code must never find its data by
walking up from ``__file__``. The files are package data of ``gate`` under ``data/``
(in the checkout ``gate/data/models`` and ``gate/data/config`` are links to the
top-level ``models/`` and ``config/``, so both layouts answer alike) and are found with
importlib.resources. A path is named as in the source tree: ``models/mrz/model.json``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SHIPPED_ROOTS = ("models", "config")


class MissingResource(FileNotFoundError):
    """A shipped file is not in this installation (a broken or partial release)."""


def _data_root() -> Path:
    root = resources.files("gate").joinpath("data")
    # installed from a wheel or a checkout, never zipped: a real directory
    return Path(str(root))


def shipped(relative: str | Path) -> Path:
    """The shipped file ``relative`` (e.g. ``config/barrier-models/generic-2door.yaml``)."""
    rel = Path(relative)
    if rel.is_absolute() or not rel.parts or rel.parts[0] not in SHIPPED_ROOTS or ".." in rel.parts:
        raise MissingResource(f"{relative}: not a shipped file (models/... or config/...)")
    path = _data_root() / rel
    if not path.exists():
        raise MissingResource(f"{relative}: not in this installation ({path})")
    return path


def shipped_dir(relative: str | Path) -> Path:
    """A shipped folder (e.g. ``config/barrier-models``), for listing what is there."""
    return shipped(relative)


def resolve(path: str | Path) -> Path:
    """A path from a config file or the command line: as given when it exists (absolute,
    or relative to the working directory), else the shipped file of that name, else as
    given (so the caller's error names what the user wrote)."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    try:
        return shipped(p)
    except MissingResource:
        return p
