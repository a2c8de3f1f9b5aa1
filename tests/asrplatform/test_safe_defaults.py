"""Safe defaults: readiness that looks at its dependencies, no development SECRET_KEY outside
development, security headers, private API docs in production, admin actions that need a permission."""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from django.contrib.admin.sites import site
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client, RequestFactory

from accounts.models import ApiKey, Tenant
from bench.server import GatewayServer, free_port
from tests.support.paths import REPO, artifacts

pytestmark = pytest.mark.django_db


def test_readiness_is_ok_with_its_database_and_redis():
    response = Client().get("/readyz")
    assert response.status_code == 200 and response.json()["checks"]["database"] == "ok"
    assert Client().get("/healthz").status_code == 200


def test_readiness_fails_when_redis_does_not_answer(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    response = Client().get("/readyz")
    assert response.status_code == 503 and response.json()["checks"]["redis"] == "unavailable"


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_gateway_whose_database_is_gone_is_alive_but_not_ready():
    port = free_port()
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="asrplatform.settings.base",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/nothing",
        SECRET_KEY="test-only-secret-key-for-a-broken-database",
        ASR_PRELOAD="0",
        REDIS_URL="",
    )
    server = GatewayServer(artifacts(), env, port=port, prepare=False, log_name=f"server-{port}.log")
    with server:
        assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        status, body = get(f"http://127.0.0.1:{port}/readyz")
    assert status == 503 and body["checks"]["database"] == "unavailable"


def settings_import(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "ASR_DEV", "DATABASE_URL", "DJANGO_DEBUG")}
    code = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY[:9])"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env={**clean, **env}, capture_output=True, text=True, timeout=120
    )


def test_the_development_secret_key_is_refused_outside_development():
    base = {"DJANGO_SETTINGS_MODULE": "asrplatform.settings.base"}
    refused = settings_import(**base, DATABASE_URL="postgres://postgres@127.0.0.1:5432/anything")
    assert refused.returncode != 0 and "Set SECRET_KEY" in refused.stderr
    assert settings_import(**base).stdout.strip() == "embedded-"  # embedded mode: SQLite, one machine
    dev = settings_import(**base, DATABASE_URL="postgres://postgres@127.0.0.1:5432/anything", ASR_DEV="1")
    assert dev.returncode == 0 and dev.stdout.strip() == "embedded-"
    given = settings_import(**base, DATABASE_URL="postgres://postgres@127.0.0.1:5432/anything", SECRET_KEY="k" * 50)
    assert given.returncode == 0 and given.stdout.strip() == "kkkkkkkkk"


def test_production_sends_hsts_and_keeps_the_api_docs_private():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECURE_HSTS_SECONDS, s.SPECTACULAR_SETTINGS['SERVE_PERMISSIONS'][0], "
        "bool(s.ASR_CONTENT_SECURITY_POLICY))"
    )
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="asrplatform.settings.production",
        SECRET_KEY="p" * 50,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/anything",
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    hsts, permission, csp = out.stdout.split()
    assert int(hsts) >= 3600 * 24 * 180 and permission.endswith("IsAuthenticated") and csp == "True"


def test_pages_carry_a_content_security_policy_and_the_api_docs_are_exempt():
    policy = Client().get("/login/").headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "Content-Security-Policy" not in Client().get("/api/docs/").headers


def test_admin_actions_need_the_change_permission():
    viewer = get_user_model().objects.create_user("viewer", password="pw-Long-123456", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__in=["view_tenant", "view_apikey"]))
    request = RequestFactory().get("/admin/")
    request.user = get_user_model().objects.get(pk=viewer.pk)
    for model in (Tenant, ApiKey):
        assert not (set(site._registry[model].get_actions(request)) - {"delete_selected"})
    editor = get_user_model().objects.create_user("editor", password="pw-Long-123456", is_staff=True)
    editor.user_permissions.add(*Permission.objects.filter(codename__in=["change_tenant", "change_apikey"]))
    request.user = get_user_model().objects.get(pk=editor.pk)
    assert {"suspend", "change_quota"} <= set(site._registry[Tenant].get_actions(request))
    assert "revoke" in site._registry[ApiKey].get_actions(request)
