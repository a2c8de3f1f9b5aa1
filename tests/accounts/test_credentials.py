"""One bearer parser (accounts.credentials.parse_bearer) for every entry point: the WebSocket
middleware, the REST API and /metrics all take the scheme in any case, as RFC 9110 says."""

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.credentials import parse_bearer
from accounts.middleware import ApiKeyAuthMiddleware


@pytest.mark.parametrize(
    ("value", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER  abc ", "abc"),
        ("Bearer", None),
        ("Bearer ", None),
        ("Basic abc", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_bearer_takes_the_scheme_in_any_case_and_nothing_else(value, token):
    assert parse_bearer(value) == token


@pytest.mark.django_db(transaction=True)
async def test_websocket_middleware_accepts_a_lower_case_bearer_key(tenant_a):
    seen = {}

    async def inner(scope, receive, send):
        seen.update(scope)

    headers = [(b"host", b"asr.example.com"), (b"authorization", f"bearer {tenant_a.raw_key}".encode())]
    scope = {"type": "websocket", "headers": headers, "query_string": b"", "client": ("10.0.0.9", 50000)}
    await ApiKeyAuthMiddleware(inner)(scope, None, None)
    assert seen["principal"] is not None and seen["principal"].tenant_id == tenant_a.tenant.pk


@pytest.mark.django_db
def test_rest_api_accepts_a_lower_case_bearer_key(tenant_a):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"bearer {tenant_a.raw_key}")
    response = client.get(reverse("api-usage"))
    assert response.status_code == 200


@pytest.mark.django_db
def test_metrics_accepts_a_lower_case_bearer_token(settings):
    settings.ASR_METRICS_TOKEN = "scrape-secret"
    assert Client().get("/metrics", HTTP_AUTHORIZATION="bearer scrape-secret").status_code == 200
    assert Client().get("/metrics", HTTP_AUTHORIZATION="bearer wrong").status_code == 403
