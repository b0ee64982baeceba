"""The pure core compiled with mypyc, when it can be (setuptools reads everything else from pyproject.toml).

LEADPULSE_COMPILE, read at build time, selects the build:
  auto   (default) mypyc when it is importable and the C compiler works; otherwise the plain .py
         sources, with a warning (the same code, about a quarter slower: BENCHMARKS.md)
  mypyc  mypyc, or the build fails (the Docker image, CI: a silent fallback would hide a slow worker)
  none   the plain .py sources

The modules compiled are ``streams.build.CORE``; ``python -m streams.build`` says which build runs.
All or nothing: when the C build fails in ``auto`` mode, the extensions already built are removed, so
a wheel or a tree never mixes mypyc's per-module shims with a missing group library.

    LEADPULSE_COMPILE=mypyc python setup.py build_ext --inplace   # what dev.py runs, in .venv
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

MODES = ("auto", "mypyc", "none")
MODE = os.environ.get("LEADPULSE_COMPILE", "auto").strip().lower() or "auto"
if MODE not in MODES:
    sys.exit(f"LEADPULSE_COMPILE={MODE!r}: expected one of {', '.join(MODES)}")


def _build_module():
    """streams/build.py, loaded from its file: importing the package would need its dependencies."""
    spec = importlib.util.spec_from_file_location("_leadpulse_build", Path(__file__).parent / "streams" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses looks the module up
    spec.loader.exec_module(module)
    return module


def warn(message: str) -> None:
    print(
        f"*** leadpulse: {message}; the core stays plain Python (LEADPULSE_COMPILE=mypyc makes this fail)",
        file=sys.stderr,
        flush=True,
    )


def ext_modules() -> list:
    if MODE == "none":
        return []
    build = _build_module()
    paths = [name.replace(".", "/") + ".py" for name in build.CORE]
    try:
        from mypyc.build import mypycify  # type-checks the core (and what it imports) first: any error stops it

        return mypycify(["--python-version", "3.11", *paths], opt_level="3", group_name=build.GROUP)
    except (Exception, SystemExit) as error:  # mypycify exits on a type error
        if MODE != "auto":
            raise
        warn(f"not compiling ({type(error).__name__}: {error})")
        return []


class OptionalBuildExt(build_ext):
    """build_ext that, in ``auto`` mode, turns a failed C build into the plain-Python core."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:  # CCompilerError, DistutilsExecError, DistutilsPlatformError, OSError...
            if MODE != "auto":
                raise
            for ext in self.extensions:
                built = os.path.join(self.build_lib, self.get_ext_filename(ext.name))
                for path in {self.get_ext_fullpath(ext.name), built}:
                    if os.path.exists(path):
                        os.remove(path)
            self.extensions = []
            warn(f"the C build failed ({type(error).__name__}: {error})")


setup(ext_modules=ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
