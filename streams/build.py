"""Which build of the pure core runs: compiled by mypyc, or the plain .py sources.

    python -m streams.build        ->  "mypyc: 22/22 core modules compiled"  or  "python: interpreted"

``CORE`` is the one list of compiled modules (``setup.py`` reads it from this file without importing
the package, so this module imports only the standard library). A module loaded by the extension
loader is compiled. In a tree built in place (``python3 dev.py``, an editable install) the .so sits
beside its .py and Python imports the .so first: a .py edited after the build would silently not
run, so a compiled module whose .py is newer than its .so (or than mypyc's group library, which
holds the code) is reported stale.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import types
from dataclasses import dataclass

# The pure core: modules that import neither Faust nor aiohttp, on the fold's path. Their group
# library (all the modules' code, calling one another natively) is GROUP + "__mypyc", inside streams/.
CORE = (
    "streams.fold.facts",
    "streams.fold.deals",
    "streams.fold.contributions",
    "streams.fold.periods",
    "streams.fold.outputs",
    "streams.fold.sla",
    "streams.fold.worktime",
    "streams.fold.profiles",
    "streams.state.codec",
    "streams.state.keystore",
    "streams.state.rollups",
    "streams.state.profiles",
    "streams.state.profile_sync",
    "streams.ingest.decode",
    "streams.ingest.deadletter",
    "streams.ingest.processor",
    "streams.metrics.figures",
    "streams.metrics.labels",
    "streams.metrics.spec",
    "streams.metrics.catalog",
    "streams.metrics.derived",
    "streams.metrics.report",
)
GROUP = "streams.core"
LIBRARY = GROUP + "__mypyc"
TREE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the directory holding streams/
# A source tree built in place, where an edit can outdate a .so. Not an installed wheel: there pip
# writes the .py and the .so in any order, and both come from the same build.
IN_PLACE = os.path.exists(os.path.join(TREE, "setup.py"))


@dataclass(frozen=True)
class Build:
    compiled: tuple[str, ...]  # core modules running from a .so
    stale: tuple[str, ...]  # of those, the ones whose .py was changed after the build

    @property
    def label(self) -> str:
        """``leadpulse_build_info``'s ``build`` label: mypyc, python, or partial / stale (neither
        of which a tree built by ``dev.py`` or a wheel should ever show)."""
        if self.stale:
            return "stale"
        if not self.compiled:
            return "python"
        return "mypyc" if len(self.compiled) == len(CORE) else "partial"

    def summary(self) -> str:
        if not self.compiled:
            return "python: interpreted"
        text = f"mypyc: {len(self.compiled)}/{len(CORE)} core modules compiled"
        if self.stale:
            text += f"; STALE (the .py changed after the build, the .so runs): {', '.join(self.stale)}"
        return text


def compiled(module: types.ModuleType) -> bool:
    return isinstance(getattr(module, "__loader__", None), importlib.machinery.ExtensionFileLoader)


def built_file(name: str) -> str | None:
    """The extension file of a module of this tree, found from its name. Not from ``__file__``: mypyc
    (2.4) derives the ``__file__`` of a module its group library initializes as if the library sat
    above the package tree, so with the library inside ``streams/`` it reads ``streams/streams/…``."""
    base = os.path.join(TREE, *name.split("."))
    return next(
        (base + suffix for suffix in importlib.machinery.EXTENSION_SUFFIXES if os.path.exists(base + suffix)), None
    )


def stale(module: types.ModuleType) -> bool:
    """Compiled, and its .py changed after the build (newer than its .so and the group library)."""
    if not (IN_PLACE and compiled(module)):
        return False
    source = os.path.join(TREE, *module.__name__.split(".")) + ".py"
    built = [path for path in (built_file(module.__name__), built_file(LIBRARY)) if path is not None]
    if not os.path.exists(source) or not built:
        return False
    return os.path.getmtime(source) > max(os.path.getmtime(path) for path in built)


def current() -> Build:
    modules = [importlib.import_module(name) for name in CORE]
    return Build(
        compiled=tuple(m.__name__ for m in modules if compiled(m)),
        stale=tuple(m.__name__ for m in modules if stale(m)),
    )


if __name__ == "__main__":
    print(current().summary())
