"""Short-lived single-use WebSocket tokens: minted for a logged-in member, hashed at rest, used once."""

import asyncio
import json
from datetime import timedelta

import pytest
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from accounts import services
from accounts.models import StreamToken, Tenant
from asrplatform.asgi import application
from tests.support.ws import Transcript, read_until_closed, send_json
from transcription.models import Session

pytestmark = [pytest.mark.django_db(transaction=True)]


def token_communicator(raw_token: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, f"/ws/v1/transcribe?token={raw_token}")


async def first_message(raw_token: str) -> tuple[Transcript, WebsocketCommunicator]:
    """Connect with a token and send ``start``; return what came back before ready or close."""
    comm = token_communicator(raw_token)
    connected, _ = await comm.connect()
    assert connected
    await send_json(comm, {"type": "start"})
    transcript = Transcript()
    output = await comm.receive_output(timeout=30)
    if output["type"] == "websocket.close":
        transcript.close_code = output.get("code", 1000)
    else:
        transcript.messages.append(json.loads(output["text"]))
    return transcript, comm


async def refused(raw_token: str) -> Transcript:
    comm = token_communicator(raw_token)
    await comm.connect()
    transcript = await read_until_closed(comm, Transcript(), timeout=10)
    await comm.disconnect()
    return transcript


def test_token_is_stored_only_as_a_keyed_hash_and_expires_in_a_minute(tenant_a):
    raw, token = services.stream_token_mint(tenant=tenant_a.tenant)
    stored = StreamToken.objects.values().get(pk=token.pk)
    assert raw not in str(stored)
    assert timedelta(seconds=59) <= token.expires_at - token.created_at <= timedelta(seconds=61)


def test_token_is_consumed_once(tenant_a):
    raw, _ = services.stream_token_mint(tenant=tenant_a.tenant)
    used = services.stream_token_consume(raw_token=raw)
    assert used is not None and used.tenant == tenant_a.tenant and used.used_at is not None
    assert services.stream_token_consume(raw_token=raw) is None


def test_expired_unknown_and_suspended_tenant_tokens_are_refused(tenant_a):
    raw, token = services.stream_token_mint(tenant=tenant_a.tenant)
    StreamToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.stream_token_consume(raw_token=raw) is None
    assert services.stream_token_consume(raw_token="not-a-token") is None
    assert services.stream_token_consume(raw_token="") is None
    raw, _ = services.stream_token_mint(tenant=tenant_a.tenant)
    Tenant.objects.filter(pk=tenant_a.tenant.pk).update(is_active=False)
    assert services.stream_token_consume(raw_token=raw) is None


def test_two_racing_connections_cannot_both_use_a_token(tenant_a):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    raw, _ = services.stream_token_mint(tenant=tenant_a.tenant)

    def consume() -> bool:
        try:
            return services.stream_token_consume(raw_token=raw) is not None
        finally:
            connection.close()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: consume(), range(8)))
    assert results.count(True) == 1


async def test_websocket_accepts_a_token_and_acts_for_its_tenant_without_a_key(tenant_a, engine_models):
    raw, _ = await asyncio.to_thread(services.stream_token_mint, tenant=tenant_a.tenant)
    transcript, comm = await first_message(raw)
    try:
        assert transcript.messages and transcript.messages[0]["type"] == "ready", transcript
        await send_json(comm, {"type": "stop"})
        await read_until_closed(comm, transcript)
    finally:
        await comm.disconnect(timeout=30)
    session = await Session.objects.aget(pk=transcript.messages[0]["session_id"])
    assert session.tenant_id == tenant_a.tenant.pk and session.api_key_id is None


async def test_a_used_token_is_refused_with_4001(tenant_a, engine_models):
    raw, _ = await asyncio.to_thread(services.stream_token_mint, tenant=tenant_a.tenant)
    transcript, comm = await first_message(raw)
    await comm.disconnect(timeout=30)
    assert transcript.messages[0]["type"] == "ready"
    again = await refused(raw)
    assert again.close_code == 4001 and again.error["code"] == "unauthenticated"


@pytest.mark.parametrize("raw", ["", "unknown-token", "x" * 500])
async def test_unknown_tokens_are_refused_with_4001_and_no_session(tenant_a, raw):
    transcript = await refused(raw)
    assert transcript.close_code == 4001
    assert await Session.objects.acount() == 0


async def test_an_expired_token_is_refused_with_4001(tenant_a):
    raw, token = await asyncio.to_thread(services.stream_token_mint, tenant=tenant_a.tenant)
    await StreamToken.objects.filter(pk=token.pk).aupdate(expires_at=timezone.now() - timedelta(seconds=1))
    transcript = await refused(raw)
    assert transcript.close_code == 4001
