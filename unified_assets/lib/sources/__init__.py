"""The source tables: one module per source in this folder, each declaring `SOURCE`, a
`SourceSpec` (spec.py). Adding a source is adding a module here; nothing else lists them.

`SOURCES` holds them by name: the daily sources first, then the reference ones, each in name
order."""

from __future__ import annotations

import importlib
import pkgutil

from unified_assets.lib.sources.spec import SourceSpec


def _discover() -> dict[str, SourceSpec]:
    found = []
    for module in pkgutil.iter_modules(__path__):
        if module.name == "spec":
            continue
        spec = getattr(importlib.import_module(f"{__name__}.{module.name}"), "SOURCE", None)
        if not isinstance(spec, SourceSpec):
            raise TypeError(f"{__name__}.{module.name} declares no SOURCE = SourceSpec(...)")
        found.append(spec)
    names = [s.name for s in found]
    tables = [s.table for s in found]
    if len(set(names)) < len(names) or len(set(tables)) < len(tables):
        raise ValueError(f"two sources share a name or a curated table: {names}, {tables}")
    return {s.name: s for s in sorted(found, key=lambda s: (not s.daily, s.name))}


SOURCES: dict[str, SourceSpec] = _discover()
DAILY = tuple(name for name, s in SOURCES.items() if s.daily)
REFERENCE = tuple(name for name, s in SOURCES.items() if not s.daily)
