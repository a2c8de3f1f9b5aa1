"""Clients that trickle their request headers are cut off in time, and the server holds a bounded
number of connections (asrplatform.server.HttpProtocol).

Against the real server over real sockets: uvicorn alone kept such a client for as long as it kept
sending a byte now and then.
"""

import json
import select
import socket
import time
import urllib.request

import pytest
from websockets.sync.client import connect

from tests.support.servers import gateway_server
from tests.support.tenants import make_tenant

pytestmark = pytest.mark.django_db(transaction=True)

HEADER_TIMEOUT_S = 3.0
SLACK_S = 3.0  # a loaded test machine, and the last byte's second
SERVER_ENV = {"ASR_PRELOAD": "0", "REDIS_URL": ""}


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with gateway_server(extra_env={**SERVER_ENV, "ASR_HTTP_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S)}) as live:
        yield live


def open_head(port: int) -> socket.socket:
    """A connection that has sent the start of a request head, and nothing more yet."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    return sock


def trickle_until_closed(socks: list[socket.socket], *, for_s: float) -> dict[socket.socket, float]:
    """Send each socket one more header byte a second; when (monotonic) the server closed each."""
    closed: dict[socket.socket, float] = {}
    deadline, next_byte = time.monotonic() + for_s, time.monotonic() + 1
    while len(closed) < len(socks) and time.monotonic() < deadline:
        live = [s for s in socks if s not in closed]
        readable, _, _ = select.select(live, [], [], 0.1)
        for sock in readable:
            try:
                if sock.recv(4096) == b"":
                    closed[sock] = time.monotonic()
            except OSError:
                closed[sock] = time.monotonic()
        if time.monotonic() >= next_byte:
            next_byte += 1
            for sock in (s for s in live if s not in closed):
                try:
                    sock.send(b"a")
                except OSError:
                    closed[sock] = time.monotonic()
    return closed


def healthz(server) -> int:
    with urllib.request.urlopen(f"{server.http_url}/healthz", timeout=10) as response:
        return response.status


def read_response(sock: socket.socket) -> bytes:
    """One /healthz response on a kept-alive connection (its JSON body ends it)."""
    received = b""
    while not received.endswith(b"}"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        received += chunk
    return received


def test_fifty_connections_trickling_headers_are_all_closed_in_time_while_others_are_served(server):
    opened = time.monotonic()
    socks = [open_head(server.port) for _ in range(50)]
    try:
        assert healthz(server) == 200
        closed = trickle_until_closed(socks, for_s=HEADER_TIMEOUT_S + SLACK_S + 5)
        assert len(closed) == len(socks), f"{len(socks) - len(closed)} of {len(socks)} still open"
        assert max(closed.values()) - opened <= HEADER_TIMEOUT_S + SLACK_S
        assert healthz(server) == 200
    finally:
        for sock in socks:
            sock.close()


def test_a_slow_but_whole_head_is_served_and_a_kept_alive_connection_gets_a_new_deadline(server):
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: yes\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        for i in range(0, len(head), len(head) // 3 + 1):  # over about 1.5 s, within the timeout
            sock.sendall(head[i : i + len(head) // 3 + 1])
            time.sleep(0.5)
        response = read_response(sock)
        assert response.startswith(b"HTTP/1.1 200") and b'"ok"' in response
        answered = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # the next head on the same connection, trickled
        closed = trickle_until_closed([sock], for_s=HEADER_TIMEOUT_S + SLACK_S + 5)
        assert closed and closed[sock] - answered <= HEADER_TIMEOUT_S + SLACK_S


def test_a_websocket_session_is_not_cut_by_the_header_timeout(server):
    key = make_tenant("slow-headers-ws").raw_key
    with connect(server.url, additional_headers={"Authorization": f"Bearer {key}"}, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "start"}))
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"
        time.sleep(HEADER_TIMEOUT_S + 2)
        assert ws.ping().wait(timeout=5), "the server did not answer a ping"
        ws.send(json.dumps({"type": "stop"}))
        assert json.loads(ws.recv(timeout=10))["type"] == "closed"


def test_past_the_connection_cap_the_connection_waiting_longest_for_its_head_is_closed(django_db_setup):
    env = {**SERVER_ENV, "ASR_HTTP_MAX_CONNECTIONS": "20", "ASR_HTTP_HEADER_TIMEOUT_S": "60"}
    with gateway_server(extra_env=env) as capped:
        socks = []
        try:
            for _ in range(30):
                socks.append(open_head(capped.port))
                time.sleep(0.02)  # so the server sees them in this order
            closed = trickle_until_closed(socks, for_s=3)
            assert set(closed) == set(socks[:10])  # the ten oldest made room for the ten newest
            assert healthz(capped) == 200  # a new client is served: the oldest trickler goes
            closed = trickle_until_closed(socks[10:], for_s=2)
            assert set(closed) == {socks[10]}
        finally:
            for sock in socks:
                sock.close()
