"""The client address behind proxies: only trusted proxies' X-Forwarded-For entries count.

Rate limits key on this address, so a client that writes its own X-Forwarded-For must neither
escape its limits nor get another address blocked.
"""

import json

import pytest
from websockets.sync.client import connect

from asrplatform.edge.client_address import client_address, parse_networks
from tests.support.servers import gateway_server
from tests.support.tenants import make_tenant

NGINX = ("127.0.0.1",)  # the proxy: in these tests, the test process itself


def xff(value: str) -> list[tuple[bytes, bytes]]:
    return [(b"x-forwarded-for", value.encode())]


@pytest.mark.parametrize(
    ("peer", "headers", "trusted", "expected"),
    [
        # Nothing trusted: the peer, whatever the header says.
        ("198.51.100.7", xff("203.0.113.1"), (), "198.51.100.7"),
        # A peer that is not a trusted proxy cannot speak for anyone else.
        ("198.51.100.7", xff("203.0.113.1"), ("10.0.0.2",), "198.51.100.7"),
        # nginx appended the real client to what the client sent: the rightmost untrusted entry wins.
        ("10.0.0.2", xff("203.0.113.1, 198.51.100.7"), ("10.0.0.2",), "198.51.100.7"),
        ("10.0.0.2", xff("203.0.113.1") + xff("198.51.100.7"), ("10.0.0.2",), "198.51.100.7"),
        # Two trusted hops (a CDN network, then nginx) are skipped.
        ("10.0.0.2", xff("1.1.1.1, 198.51.100.7, 172.16.5.9"), ("10.0.0.2", "172.16.0.0/12"), "198.51.100.7"),
        # Forms proxies write: a port, a bracketed IPv6 with a port, an IPv4-mapped IPv6.
        ("10.0.0.2", xff("198.51.100.7:51000"), ("10.0.0.2",), "198.51.100.7"),
        ("10.0.0.2", xff("[2001:db8::5]:443"), ("10.0.0.2",), "2001:db8::5"),
        ("::ffff:10.0.0.2", xff("198.51.100.7"), ("10.0.0.2",), "198.51.100.7"),
        # Garbage where an address should be: the last address a trusted hop vouched for.
        ("10.0.0.2", xff("not-an-ip"), ("10.0.0.2",), "10.0.0.2"),
        # A trusted peer with no header is itself the client (a health check from the proxy host).
        ("10.0.0.2", [], ("10.0.0.2",), "10.0.0.2"),
    ],
)
def test_the_client_is_the_rightmost_address_no_trusted_proxy_wrote(peer, headers, trusted, expected):
    assert client_address(peer, headers, parse_networks(trusted)) == expected


def test_a_malformed_trusted_proxy_setting_fails_loudly():
    with pytest.raises(ValueError):
        parse_networks(("10.0.0.300",))


def first_reply(url: str, key: str, forwarded_for: str, *, start: bool = False) -> dict:
    """The server's first message on a WebSocket with this key (the test process is the proxy)."""
    headers = {"Authorization": f"Bearer {key}", "X-Forwarded-For": forwarded_for}
    with connect(url, additional_headers=headers, open_timeout=10) as ws:
        if start:
            ws.send(json.dumps({"type": "start"}))
        return json.loads(ws.recv(timeout=10))


@pytest.mark.django_db(transaction=True)
def test_spoofed_forwarded_for_neither_escapes_the_auth_limit_nor_blocks_a_victim(django_db_setup):
    env = {"ASR_TRUSTED_PROXIES": ",".join(NGINX), "ASR_WS_AUTH_FAILURES": "3", "ASR_PRELOAD": "0", "REDIS_URL": ""}
    with gateway_server(extra_env=env) as server:
        attacker, victim = "198.51.100.66", "203.0.113.10"
        # The attacker writes a different address each time; nginx appends the attacker's real one.
        codes = [first_reply(server.url, "asr_bad_key", f"192.0.2.{i}, {attacker}")["code"] for i in range(5)]
        assert codes[:3] == ["unauthenticated"] * 3 and codes[3:] == ["rate_limited"] * 2
        # The attacker also claimed to be the victim: the victim's own connections are untouched.
        good_key = make_tenant("xff-victim").raw_key
        assert first_reply(server.url, "asr_bad_key", f"{victim}, {attacker}")["code"] == "rate_limited"
        assert first_reply(server.url, good_key, victim, start=True)["type"] == "ready"
