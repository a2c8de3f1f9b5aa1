"""Limits that hold under concurrency, the admin's login under the same limit, keys managed by owners only."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from accounts.models import ApiKey, Membership
from asrplatform.asgi import application
from tests.support.tenants import make_tenant
from tests.support.ws import Transcript, read_until_closed

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def limits(settings):
    settings.ASR_RATE_LIMITS = {"ws_auth_failure": (20, 60), "login_failure": (10, 60), "signup": (5, 60)}


def test_concurrent_wrong_password_logins_are_evaluated_at_most_the_limit(limits):
    get_user_model().objects.create_user(username="grace", password="right-password-123")

    def attempt(_: int) -> int:
        return (
            Client(REMOTE_ADDR="10.9.0.1")
            .post(reverse("login"), {"username": "grace", "password": "wrong"})
            .status_code
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(attempt, range(40)))
    assert statuses.count(200) <= 10 and statuses.count(429) >= 30, statuses
    right = {"username": "grace", "password": "right-password-123"}
    assert Client(REMOTE_ADDR="10.9.0.1").post(reverse("login"), right).status_code == 429


async def test_concurrent_bad_keys_are_evaluated_at_most_the_limit(limits):
    async def attempt() -> int | None:
        comm = WebsocketCommunicator(application, "/ws/v1/transcribe", headers=[(b"authorization", b"Bearer asr_x_y")])
        comm.scope["client"] = ("10.9.0.2", 50000)
        await comm.connect(timeout=20)
        transcript = await read_until_closed(comm, Transcript(), timeout=20)
        await comm.disconnect()
        return transcript.close_code

    codes = await asyncio.gather(*(attempt() for _ in range(150)))
    assert codes.count(4001) <= 20 and codes.count(4029) >= 130, sorted(set(codes))


def test_the_admin_login_is_under_the_same_limit(limits):
    get_user_model().objects.create_superuser(username="root", password="right-password-123")
    admin = Client(REMOTE_ADDR="10.9.0.3")
    wrong = {"username": "root", "password": "wrong", "next": "/admin/"}
    statuses = [admin.post("/admin/login/", wrong).status_code for _ in range(15)]
    assert statuses[:10] == [200] * 10 and statuses[10:] == [429] * 5
    # One budget per address: blocked on the admin, blocked on the site's login page too.
    assert admin.post(reverse("login"), {"username": "root", "password": "wrong"}).status_code == 429
    # A good admin login from another address still works and does not count.
    good = Client(REMOTE_ADDR="10.9.0.4").post("/admin/login/", {**wrong, "password": "right-password-123"})
    assert good.status_code == 302


def test_only_the_owner_manages_keys_from_the_dashboard():
    team = make_tenant("keys-team")
    member = get_user_model().objects.create_user(username="member", password="pw-Long-123456")
    Membership.objects.create(user=member, tenant=team.tenant, role=Membership.Role.MEMBER)
    client = Client()
    client.force_login(member)
    assert b"Create key" not in client.get(reverse("dashboard")).content
    assert client.post(reverse("api_key_create"), {"name": "sneaky"}).status_code == 403
    assert client.post(reverse("api_key_revoke", args=[team.api_key.prefix])).status_code == 403
    assert not ApiKey.objects.filter(name="sneaky").exists()
    assert ApiKey.objects.get(pk=team.api_key.pk).revoked_at is None
    owner = get_user_model().objects.create_user(username="owner", password="pw-Long-123456")
    Membership.objects.create(user=owner, tenant=team.tenant, role=Membership.Role.OWNER)
    client.force_login(owner)
    assert b"Create key" in client.get(reverse("dashboard")).content
    assert client.post(reverse("api_key_create"), {"name": "real"}).status_code == 200
    assert ApiKey.objects.filter(name="real", tenant=team.tenant).exists()
