"""`make serve`, the processes of `make demo` (config/run_demo.sh), stops cleanly on Ctrl-C and TERM.

It runs as `make demo` runs it, through make, in a process group of its own, with its own var
folder (SQLite, filesystem broker) and a free port. Ctrl-C is SIGINT to the whole foreground
process group; `kill PID` is SIGTERM to make alone, which forwards it.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.sqlite_only
ROOT = Path(__file__).resolve().parent.parent
# The script's own deadline for its children (a warm shutdown, then a cold one) stays inside it.
EXIT_DEADLINE = 10


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _env(var_dir: Path) -> dict:
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    return {**env, "MORM_VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory):
    """A migrated demo database, shared by this module's tests."""
    if "DATABASE_URL" in os.environ:
        pytest.skip("the demo runs on SQLite: its test runs in the SQLite suite")
    folder = tmp_path_factory.mktemp("demo-var")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=_env(folder),
                   check=True, timeout=300)
    return folder


def _answers(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=2).close()
        return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def _started_demo(var_dir: Path, log: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    with log.open("w") as out:
        demo = subprocess.Popen(["make", "--no-print-directory", "serve", f"VENV={sys.prefix}", f"PORT={port}"],
                                cwd=ROOT, env=_env(var_dir), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.monotonic() + 120
    while not (_answers(port) and log.read_text().count(" ready.") == 2):
        assert demo.poll() is None, f"the demo exited early:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"the demo did not come up:\n{log.read_text()}"
        time.sleep(0.2)
    return demo, port


@pytest.mark.parametrize("send", [
    pytest.param(lambda demo: os.killpg(demo.pid, signal.SIGINT), id="ctrl-c"),
    pytest.param(lambda demo: demo.send_signal(signal.SIGTERM), id="sigterm"),
])
@pytest.mark.slow
def test_the_demo_stops_cleanly(var_dir, tmp_path, send):
    demo, port = _started_demo(var_dir, tmp_path / "demo.log")
    try:
        send(demo)
        demo.wait(timeout=EXIT_DEADLINE)
        deadline = time.monotonic() + 5  # a process may still be reaped by the kernel
        while _group_alive(demo.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _group_alive(demo.pid), "a process of the demo outlived it"
    finally:
        if _group_alive(demo.pid):
            os.killpg(demo.pid, signal.SIGKILL)
    output = (tmp_path / "demo.log").read_text()
    assert "Segmentation fault" not in output
    assert output.count("Warm shutdown") <= 4, output  # once per worker, twice at most
    assert not _answers(port)


def test_compose_runs_the_recovery_schedule_on_the_default_worker():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert "-B" in services["worker"]["command"] and "-B" not in services["worker-training"]["command"]
    assert "-B" in (ROOT / "config" / "run_demo.sh").read_text()
