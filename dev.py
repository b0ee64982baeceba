#!/usr/bin/env python3
"""Set everything up, then run LeadPulse or its tests. Needs only python3 >= 3.11.

    python3 dev.py run     # embedded broker + worker + simulator; prints where /metrics is
    python3 dev.py test    # the whole suite (unit, property, broker and deploy tests)
    python3 dev.py bench   # the same-run benchmark

Creates ``.venv`` and installs the project into it (again only when pyproject.toml changed),
compiles the pure core with mypyc in place (again whenever a core .py changed; ``LEADPULSE_COMPILE``:
auto, mypyc or none, as in setup.py), and installs the Debian packages the tests drive (promtool,
amtool, chromium and chromedriver).
"""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import subprocess
import sys
import time
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".leadpulse-installed"
CORE_STAMP = VENV / ".leadpulse-core"


def say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def ensure_python() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script must run, and explain, on older Pythons
        sys.exit(f"LeadPulse needs Python 3.11 or newer; this is {sys.version.split()[0]}")


def ensure_venv() -> None:
    if not (BIN / "python").exists():
        say(f"creating {VENV}")
        try:
            venv.EnvBuilder(with_pip=True).create(VENV)
        except Exception as exc:  # Debian's python3 without ensurepip
            if shutil.which("apt-get") and os.geteuid() == 0:
                version = f"{sys.version_info.major}.{sys.version_info.minor}"
                subprocess.run(["apt-get", "update", "-qq"], check=True)
                subprocess.run(["apt-get", "install", "-y", "-qq", f"python{version}-venv"], check=True)
                shutil.rmtree(VENV, ignore_errors=True)
                venv.EnvBuilder(with_pip=True).create(VENV)
            else:
                sys.exit(f"could not create a virtualenv ({exc}); install python3-venv")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not (STAMP.exists() and STAMP.read_text() == wanted):
        say("installing LeadPulse and its test tools into .venv")
        pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
        subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
        # The editable install builds nothing (LEADPULSE_COMPILE=none): ensure_core builds in place, with
        # the build requirements (the pinned mypy) installed here in .venv rather than in pip's build env.
        plain = {**os.environ, "LEADPULSE_COMPILE": "none"}
        subprocess.run([*pip, "install", "-e", f"{ROOT}[test]", *build_requirements()], check=True, env=plain)
        STAMP.write_text(wanted)
    ensure_core()


def build_requirements() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]


def core_sources() -> list[Path]:
    """The .py files of ``streams.build.CORE`` (read from the file: the package needs .venv)."""
    tree = ast.parse((ROOT / "streams" / "build.py").read_text())
    (core,) = (node.value for node in tree.body if isinstance(node, ast.Assign) and ast.unparse(node.targets) == "CORE")
    return [ROOT / (name.replace(".", "/") + ".py") for name in ast.literal_eval(core)]


def compiled_outputs() -> list[Path]:
    """Every extension module in the tree: mypyc's shims beside the .py files and its group library."""
    return sorted(p for package in ("streams", "schemas") for p in (ROOT / package).rglob("*.so"))


def project_imports(sources: list[Path]) -> list[Path]:
    """The sources and the project's modules they import, transitively: mypyc compiles the core
    against their types (a field's type changed in schemas/ changes the compiled code)."""
    seen: dict[Path, None] = {}
    todo = list(sources)
    while todo:
        path = todo.pop()
        if path in seen or not path.exists():
            continue
        seen[path] = None
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            for name in names:
                if name.split(".")[0] in {"streams", "schemas"}:
                    base = ROOT / name.replace(".", "/")
                    todo += [base.with_suffix(".py"), base / "__init__.py"]
    return sorted(seen)


def core_key(mode: str) -> str:
    """What the compiled core is built from: the core's sources and the project modules they import,
    setup.py, the pins, the mode, the Python."""
    digest = hashlib.sha256(f"{mode} {sys.version}".encode())
    for path in [ROOT / "setup.py", ROOT / "pyproject.toml", *project_imports(core_sources())]:
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def ensure_core() -> None:
    """Build the compiled core in place when any of its sources changed since the last build, so this
    tree never runs a .so older than its .py (Python imports the .so first). ``none`` removes it."""
    mode = os.environ.get("LEADPULSE_COMPILE", "auto").strip().lower() or "auto"
    if mode not in {"auto", "mypyc", "none"}:
        sys.exit(f"LEADPULSE_COMPILE={mode!r}: expected auto, mypyc or none")
    if mode == "none":
        for path in compiled_outputs():
            path.unlink()
        CORE_STAMP.unlink(missing_ok=True)
        return
    key = core_key(mode)
    built = CORE_STAMP.read_text().split() if CORE_STAMP.exists() else []
    if built and built[0] == key:
        if built[1:] == ["python"]:  # auto found no compiler for these same sources: not again each run
            return
        shims = [source.with_name(source.stem) for source in core_sources()]
        outputs = compiled_outputs()
        if all(any(str(o).startswith(f"{shim}.") for o in outputs) for shim in shims):
            now = time.time()  # the same sources, checked out again (newer mtimes): the .so files are theirs
            for path in outputs:
                os.utime(path, (now, now))
            return
    for path in compiled_outputs():  # all or nothing: no shim of an older build beside a failed one
        path.unlink()
    say(f"compiling the core with mypyc (LEADPULSE_COMPILE={mode}; under a minute on two cores)")
    started = time.monotonic()
    subprocess.run(
        [str(BIN / "python"), "setup.py", "-q", "build_ext", "--inplace", f"--parallel={os.cpu_count() or 1}"],
        cwd=ROOT,
        env={**os.environ, "LEADPULSE_COMPILE": mode},
        check=True,
    )
    result = "mypyc" if compiled_outputs() else "python"
    say(f"core build: {result}, in {time.monotonic() - started:.0f} s")
    CORE_STAMP.write_text(f"{key} {result}")


# Debian packages the tests drive, by the commands they provide: the real Prometheus, Alertmanager,
# promtool and amtool (deploy and end-to-end tests), docker-compose (the compose file's checks),
# and a real browser with its matching driver (the live page's test).
TEST_TOOLS = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
    "chromium": "chromium",
    "chromedriver": "chromium-driver",
    "docker-compose": "docker-compose",  # validates docker-compose.yml (no Docker engine needed)
}


def ensure_test_tools() -> None:
    missing = sorted({package for command, package in TEST_TOOLS.items() if not shutil.which(command)})
    if not missing:
        return
    if not shutil.which("apt-get") or os.geteuid() != 0:
        sys.exit(f"the tests need Debian's {', '.join(missing)}: apt-get install {' '.join(missing)}")
    say(f"installing Debian's {', '.join(missing)} (the tests drive the real tools)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True, env=env)


# Quix Streams, a baseline of the benchmark only, and py-spy: in a virtualenv of its own, not LeadPulse's.
BENCH_VENV = ROOT / ".venv-bench"
BENCH_PACKAGES = ["quixstreams>=3.28,<4", "py-spy>=0.4,<1"]  # py-spy: the bench's profile section


def ensure_bench_venv() -> str:
    python = BENCH_VENV / "bin" / "python"
    stamp = BENCH_VENV / ".installed"
    if not stamp.exists() or stamp.read_text() != " ".join(BENCH_PACKAGES):
        say(f"installing the benchmark's baseline ({', '.join(BENCH_PACKAGES)}) into {BENCH_VENV.name}")
        venv.EnvBuilder(with_pip=True).create(BENCH_VENV)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *BENCH_PACKAGES], check=True)
        stamp.write_text(" ".join(BENCH_PACKAGES))
    return str(python)


def main() -> int:
    ensure_python()
    command = sys.argv[1] if len(sys.argv) > 1 else "run"
    extra = sys.argv[2:]
    ensure_venv()
    os.chdir(ROOT)
    if command == "run":
        return subprocess.call([str(BIN / "leadpulse"), "demo", *extra])
    if command == "test":
        ensure_test_tools()
        return subprocess.call([str(BIN / "python"), "-m", "pytest", *extra])
    if command == "bench":
        python = ensure_bench_venv()
        py_spy = str(Path(python).parent / "py-spy")
        return subprocess.call(
            [str(BIN / "python"), "-m", "bench.run", "--quix-python", python, "--py-spy", py_spy, *extra]
        )
    sys.exit(f"unknown command {command!r}: use run, test or bench")


if __name__ == "__main__":
    sys.exit(main())
