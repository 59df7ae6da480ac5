"""A real browser against the real API: Debian's Chromium driven by Playwright, the API
served by uvicorn on a localhost port, and plain HTML pages served from other ports (other
origins), as a customer's website would embed a form.

Chromium comes from Debian's package (Playwright downloads no browser): when
/usr/bin/chromium is missing, the session installs it with apt-get (the machines are
Debian, as root), so `make test` on a fresh machine gets it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from app.config import Settings
from tests.conftest import REDIS_URL

CHROMIUM = "/usr/bin/chromium"


def _install_chromium() -> None:
    if shutil.which("apt-get") is None:
        pytest.fail(f"{CHROMIUM} is missing and apt-get is not here: install Chromium")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]
    if subprocess.run(install, check=False, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)


@pytest.fixture(scope="session")
def chromium() -> str:
    if not os.path.exists(CHROMIUM):
        _install_chromium()
    return CHROMIUM


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def live_api(settings: Settings) -> Iterator[str]:
    """The API as a browser reaches it: uvicorn in its own process, on the test database."""
    port = free_port()
    env = {**os.environ, "RELATA_DATABASE_URL": settings.database_url,
           "RELATA_REDIS_URL": REDIS_URL, "RELATA_ENV": "test", "RELATA_LOG_LEVEL": "WARNING",
           "RELATA_RATE_LIMIT_PER_MINUTE": "100000", "RELATA_SIGNUPS_PER_MINUTE": "100000"}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port",
         str(port), "--no-access-log"], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if process.poll() is not None:
                raise RuntimeError(process.stderr.read().decode() if process.stderr else "")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("the API did not start")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


class Site:
    """A website on a localhost port of its own (an origin of its own) serving `page`."""

    def __init__(self) -> None:
        self.page = ""
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = site.page.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sites() -> Iterator[Callable[[], Site]]:
    made: list[Site] = []

    def new_site() -> Site:
        made.append(Site())
        return made[-1]

    yield new_site
    for site in made:
        site.close()


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield launched
        finally:
            await launched.close()
