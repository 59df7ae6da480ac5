"""The SSRF guard: what may be called, what is refused, and that a connection goes only to
the address that was checked."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from app.integrations import http_guard
from app.integrations.http_guard import AllowList, Policy, UnsafeURLError, check_url

STRICT = Policy(AllowList())


def scripted(answers: dict[str, list[str]]) -> http_guard.Resolver:
    """A DNS stand-in: each name answers its next list of addresses (the last one sticks)."""
    async def resolve(host: str, port: int) -> list[str]:
        queue = answers[host]
        return [queue.pop(0) if len(queue) > 1 else queue[0]]
    return resolve


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.1.1",
    "169.254.1.1", "169.254.169.254", "100.64.0.1", "100.127.255.254", "0.0.0.0",
    "224.0.0.1", "239.255.255.250", "255.255.255.255", "198.18.0.1", "192.0.2.10",
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "fd00:ec2::254", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "2002:7f00:1::1",
    "64:ff9b::a00:1", "2001:db8::1",
])
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not http_guard.public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "1.1.1.1",
                                     "2606:4700:4700::1111", "2a00:1450:4001::200e"])
def test_public_addresses_pass(address: str) -> None:
    assert http_guard.public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://[::1]:8080/", "http://[::ffff:127.0.0.1]/",
    "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/",
    "http://10.1.2.3/", "http://100.100.100.200/", "http://0.0.0.0:80/",
])
async def test_private_literal_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsafeURLError):
        await check_url(url, STRICT)


@pytest.mark.parametrize("url", [
    "http://2130706433/", "http://0177.0.0.1/", "http://0x7f.0.0.1/", "http://0x7f000001/",
    "http://127.1/", "http://017700000001/",
])
async def test_numeric_tricks_are_refused(url: str) -> None:
    with pytest.raises(UnsafeURLError, match="dotted-quad|Invalid IPv4"):
        await check_url(url, STRICT)


@pytest.mark.parametrize("url,why", [
    ("ftp://example.com/", "http"), ("file:///etc/passwd", "http"),
    ("gopher://example.com/", "http"), ("http://user:pw@example.com/", "user name"),
    ("http://example.com@127.0.0.1/", "user name"), ("https://example.com/#x", "fragment"),
    ("http:///nohost", "host"), ("http://exa mple.com/", "spaces"),
    ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
    ("https://" + "a" * 2001 + ".com/", "2000"),
])
async def test_bad_shapes_are_refused(url: str, why: str) -> None:
    with pytest.raises(UnsafeURLError, match=why):
        await check_url(url, STRICT)


async def test_names_resolving_to_private_addresses_are_refused() -> None:
    # The real system resolver: localhost is loopback (via /etc/hosts).
    with pytest.raises(UnsafeURLError, match="resolves to"):
        await check_url("http://localhost:8080/hook", STRICT)
    policy = Policy(AllowList(), scripted({"evil.example": ["93.184.216.34", "10.0.0.5"]}))

    async def two(host: str, port: int) -> list[str]:  # one public, one private: refused
        return ["93.184.216.34", "10.0.0.5"]
    with pytest.raises(UnsafeURLError, match="10.0.0.5"):
        await check_url("https://evil.example/", Policy(AllowList(), two))
    assert (await check_url("https://evil.example/", policy)).addresses == ("93.184.216.34",)


async def test_unresolvable_names_are_refused() -> None:
    with pytest.raises(UnsafeURLError, match="does not resolve"):
        await check_url("http://no-such-host.invalid/", STRICT)


async def test_the_allowlist_lets_listed_private_targets_through_but_not_metadata() -> None:
    policy = Policy(AllowList.parse(["127.0.0.0/8", "10.0.0.0/8", "receiver.internal"]),
                    scripted({"receiver.internal": ["192.168.7.7"]}))
    assert (await check_url("http://127.0.0.1:9000/", policy)).addresses == ("127.0.0.1",)
    assert (await check_url("http://receiver.internal/", policy)).addresses == ("192.168.7.7",)
    with pytest.raises(UnsafeURLError):
        await check_url("http://192.168.1.1/", policy)
    wide = Policy(AllowList.parse(["169.254.0.0/16"]))
    with pytest.raises(UnsafeURLError, match="metadata"):
        await check_url("http://169.254.169.254/", wide)
    exact = Policy(AllowList.parse(["169.254.169.254"]))
    await check_url("http://169.254.169.254/", exact)


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.headers.get("host", ""))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


async def test_the_connection_goes_to_the_checked_address_with_the_host_kept(
        receiver: tuple[str, list[str]]) -> None:
    where, seen = receiver
    port = int(where.split(":")[1])
    policy = Policy(AllowList.parse(["hooks.test"]), scripted({"hooks.test": ["127.0.0.1"]}))
    target = await check_url(f"http://hooks.test:{port}/in", policy)
    async with http_guard.pinning_client() as client:
        with http_guard.pinned(target):
            response = await client.post(f"http://hooks.test:{port}/in", content=b"{}")
        assert response.status_code == 204
        assert seen == [f"hooks.test:{port}"], "the Host header names the host, not the address"
        # A URL whose host was not the checked one cannot connect (a parser mismatch, a
        # redirect target, a second host): refused at the socket.
        with http_guard.pinned(target), pytest.raises(httpx.ConnectError, match="not checked"):
            await client.post(f"http://other.test:{port}/in", content=b"{}")
