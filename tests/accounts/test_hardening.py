"""Failed-auth rate limits (WebSocket, login, sign-up) and the WebSocket Origin allow-list."""

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from accounts import services
from asrplatform.asgi import application
from tests.support.ws import Transcript, read_until_closed

WS_PATH = "/ws/v1/transcribe"


@pytest.fixture
def tight_limits(settings):
    settings.ASR_RATE_LIMITS = {"ws_auth_failure": (3, 60), "login_failure": (3, 60), "signup": (2, 60)}


def communicator(*, address: str, key: str | None = None, token: str | None = None, origin: str | None = None):
    headers = [(b"host", b"asr.example.com")]
    if key:
        headers.append((b"authorization", f"Bearer {key}".encode()))
    if origin:
        headers.append((b"origin", origin.encode()))
    comm = WebsocketCommunicator(application, f"{WS_PATH}?token={token}" if token else WS_PATH, headers=headers)
    comm.scope["client"] = (address, 50000)
    return comm


async def handshake(comm: WebsocketCommunicator) -> tuple[bool, Transcript]:
    """(accepted, what the server sent until it closed) — closes are read, never waited on long."""
    connected, _ = await comm.connect(timeout=10)
    transcript = Transcript()
    if connected:
        transcript = await read_until_closed(comm, transcript, timeout=10)
    await comm.disconnect()
    return connected, transcript


@pytest.mark.django_db(transaction=True)
async def test_websocket_auth_failures_block_the_address_with_rate_limited_but_not_others(tenant_a, tight_limits):
    for _ in range(3):
        accepted, transcript = await handshake(communicator(address="10.0.0.1", key="asr_0000_wrong"))
        assert accepted and transcript.close_code == 4001
    # Even a good key, from this address, until the window passes; the client is told why and for how long.
    accepted, transcript = await handshake(communicator(address="10.0.0.1", key=tenant_a.raw_key))
    assert accepted and transcript.close_code == 4029
    assert [m["type"] for m in transcript.messages] == ["error"]
    assert transcript.error["code"] == "rate_limited" and 55 <= transcript.error["retry_after_s"] <= 60
    assert f"{transcript.error['retry_after_s']} s" in transcript.error["message"]
    comm = communicator(address="10.0.0.2", key=tenant_a.raw_key)
    connected, _ = await comm.connect(timeout=10)
    assert connected
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_browser_token_from_a_foreign_origin_is_refused(tenant_a, settings):
    settings.ASR_ALLOWED_ORIGINS = ["https://app.example.com"]
    raw, _ = await _mint(tenant_a)
    accepted, _ = await handshake(communicator(address="10.0.0.3", token=raw, origin="https://evil.example.net"))
    assert not accepted
    raw, _ = await _mint(tenant_a)
    comm = communicator(address="10.0.0.3", token=raw, origin="https://app.example.com")
    connected, _ = await comm.connect(timeout=10)
    assert connected
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_same_origin_is_the_default_and_api_key_clients_are_not_origin_checked(tenant_a, settings):
    settings.ASR_ALLOWED_ORIGINS = []
    raw, _ = await _mint(tenant_a)
    accepted, _ = await handshake(communicator(address="10.0.0.4", token=raw, origin="https://evil.example.net"))
    assert not accepted
    raw, _ = await _mint(tenant_a)
    comm = communicator(address="10.0.0.4", token=raw, origin="https://asr.example.com")
    assert (await comm.connect(timeout=10))[0]
    await comm.disconnect()
    comm = communicator(address="10.0.0.4", key=tenant_a.raw_key, origin="https://evil.example.net")
    assert (await comm.connect(timeout=10))[0]
    await comm.disconnect()


async def _mint(tenant_with_key):
    from channels.db import database_sync_to_async

    return await database_sync_to_async(services.stream_token_mint)(tenant=tenant_with_key.tenant)


@pytest.mark.django_db
def test_failed_logins_are_limited_per_address(tight_limits):
    get_user_model().objects.create_user(username="ada", password="right-password-123")
    client = Client(REMOTE_ADDR="10.1.0.1")
    for _ in range(3):
        assert client.post(reverse("login"), {"username": "ada", "password": "wrong"}).status_code == 200
    blocked = client.post(reverse("login"), {"username": "ada", "password": "right-password-123"})
    assert blocked.status_code == 429 and b"Too many failed logins" in blocked.content
    other = Client(REMOTE_ADDR="10.1.0.2").post(reverse("login"), {"username": "ada", "password": "right-password-123"})
    assert other.status_code == 302


@pytest.mark.django_db
def test_signups_are_limited_per_address(tight_limits):
    client = Client(REMOTE_ADDR="10.2.0.1")

    def signup(n: int):
        data = {
            "tenant_name": f"T{n}",
            "username": f"u{n}",
            "password1": "pw-Long-123456",
            "password2": "pw-Long-123456",
        }
        return client.post(reverse("signup"), data)

    assert signup(1).status_code == 200 and signup(2).status_code == 200
    third = signup(3)
    assert third.status_code == 429 and b"Too many attempts" in third.content
    assert not get_user_model().objects.filter(username="u3").exists()
