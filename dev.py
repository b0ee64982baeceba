#!/usr/bin/env python3
"""Set everything up, then run LeadPulse or its tests. Needs only python3 >= 3.11.

    python3 dev.py run     # embedded broker + worker + simulator; prints where /metrics is
    python3 dev.py test    # the whole suite (unit, property, broker and deploy tests)
    python3 dev.py bench   # the same-run benchmark

Creates ``.venv`` and installs the project into it (again only when pyproject.toml changed),
and installs the Debian packages the tests drive (promtool, amtool, chromium and chromedriver).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".leadpulse-installed"


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
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    say("installing LeadPulse and its test tools into .venv")
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "-e", f"{ROOT}[test]"], check=True)
    STAMP.write_text(wanted)


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


# Quix Streams, a baseline of the benchmark only: in a virtualenv of its own, not LeadPulse's.
BENCH_VENV = ROOT / ".venv-bench"
BENCH_PACKAGES = ["quixstreams>=3.28,<4"]


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
        return subprocess.call([str(BIN / "python"), "-m", "bench.run", "--quix-python", ensure_bench_venv(), *extra])
    sys.exit(f"unknown command {command!r}: use run, test or bench")


if __name__ == "__main__":
    sys.exit(main())
