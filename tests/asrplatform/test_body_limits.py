"""Request bodies are refused before they are read: unauthenticated uploads, and anything oversize.

Against the real server (``python -m asrplatform.server``) over real sockets: what matters is how
much of a body the server takes in before it answers, and whether its memory grows.
"""

import json
import socket
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.credentials import http_credentials_refusal, parse_bearer
from tests.support.servers import gateway_server
from tests.support.tenants import make_tenant
from transcription.models import FileTranscription

pytestmark = pytest.mark.django_db(transaction=True)

MB = 1024 * 1024
UPLOAD_PATH = "/api/v1/transcriptions"
# Loopback socket buffers hold a few MB that the client "sends" before the server has read them.
MOST_SENT_BEFORE_REFUSAL = 20 * MB
MOST_RSS_GROWTH = 30 * MB


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with gateway_server(extra_env={"ASR_PRELOAD": "0", "ASR_FILE_MAX_BYTES": str(4 * MB), "REDIS_URL": ""}) as live:
        yield live


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def post_body(
    port: int, path: str, total: int, *, chunked: bool = False, headers: dict[str, str] | None = None
) -> tuple[int, int, str]:
    """POST ``total`` bytes of zeros as fast as the server takes them: (bytes sent, status, response text)."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: multipart/form-data; boundary=zz"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}")
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    block, sent = b"\0" * 65536, 0
    try:
        while sent < total:
            sock.sendall(b"10000\r\n" + block + b"\r\n" if chunked else block)
            sent += len(block)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed: the point of these tests
    response = b""
    try:
        while chunk := sock.recv(65536):
            response += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    sock.close()
    text = response.decode(errors="replace")
    status = int(text.split(" ", 2)[1]) if text.startswith("HTTP/1.1 ") else 0
    return sent, status, text


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_unauthenticated_200_mb_upload_is_refused_unread_and_leaves_no_memory_behind(server, chunked):
    before = rss_bytes(server.process.pid)
    sent, status, text = post_body(server.port, UPLOAD_PATH, 200 * MB, chunked=chunked)
    assert status == 401 and "Authentication credentials were not provided." in text
    assert "www-authenticate: bearer" in text.lower()
    assert sent <= MOST_SENT_BEFORE_REFUSAL, f"{sent / MB:.0f} MB went in before the refusal"
    time.sleep(0.5)
    assert rss_bytes(server.process.pid) - before <= MOST_RSS_GROWTH


def test_a_wrong_key_is_refused_before_the_body_too(server):
    sent, status, text = post_body(server.port, UPLOAD_PATH, 200 * MB, headers={"Authorization": "Bearer asr_x_y"})
    assert status == 401 and "Invalid, revoked or suspended API key." in text
    assert sent <= MOST_SENT_BEFORE_REFUSAL


def test_an_authenticated_upload_declared_over_the_limit_is_refused_unread(server):
    key = make_tenant("body-declared").raw_key
    sent, status, text = post_body(server.port, UPLOAD_PATH, 200 * MB, headers={"Authorization": f"Bearer {key}"})
    assert status == 413 and '"too_large"' in text and f"at most {4 * MB} bytes" in text
    assert sent <= MOST_SENT_BEFORE_REFUSAL


def test_an_authenticated_chunked_upload_is_cut_off_at_the_limit(server):
    key = make_tenant("body-chunked").raw_key
    before = rss_bytes(server.process.pid)
    sent, status, text = post_body(
        server.port, UPLOAD_PATH, 200 * MB, chunked=True, headers={"Authorization": f"Bearer {key}"}
    )
    assert status == 413 and '"too_large"' in text
    assert sent <= 4 * MB + MOST_SENT_BEFORE_REFUSAL
    time.sleep(0.5)
    assert rss_bytes(server.process.pid) - before <= MOST_RSS_GROWTH


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_other_paths_take_at_most_a_small_body_without_login(server, chunked):
    sent, status, text = post_body(server.port, "/login/", 100 * MB, chunked=chunked)
    assert status == 413 and "Request bodies may be at most 1048576 bytes here." in text
    assert sent <= MOST_SENT_BEFORE_REFUSAL


def test_a_malformed_content_length_is_a_clear_400(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(b"POST /login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 12, 13\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 400")
    sock.close()


def test_a_real_upload_with_a_key_still_goes_through_the_server(server, eval_dir):
    import urllib.request
    import uuid

    key = make_tenant("body-ok").raw_key
    audio = (eval_dir / "real" / "jfk.wav").read_bytes()
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="jfk.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()
        + audio
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"{server.http_url}{UPLOAD_PATH}",
        data=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 202
        job_id = json.loads(response.read())["id"]
    # The server runs the job now: let it end, or its writes race the flush of this test's tables.
    deadline = time.monotonic() + 120
    while FileTranscription.objects.get(pk=job_id).status not in ("done", "failed"):
        assert time.monotonic() < deadline, "the job did not end"
        time.sleep(0.2)


def test_the_bearer_parser_takes_any_case_of_the_scheme_and_nothing_else():
    assert parse_bearer("Bearer asr_a_b") == parse_bearer("bearer asr_a_b") == parse_bearer(" BEARER  asr_a_b ")
    assert parse_bearer("Bearer asr_a_b") == "asr_a_b"
    assert parse_bearer("Basic dXNlcjpwYXNz") is None and parse_bearer("Bearer ") is None and parse_bearer(None) is None


def test_a_logged_in_session_cookie_counts_as_credentials_and_a_stale_one_does_not(tenant_a):
    user = get_user_model().objects.create_user("body-user", password="a-long-password-1")
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    assert http_credentials_refusal([(b"cookie", cookie)]) is None
    client.logout()
    assert http_credentials_refusal([(b"cookie", cookie)]) == "Authentication credentials were not provided."
    assert http_credentials_refusal([]) == "Authentication credentials were not provided."
    assert http_credentials_refusal([(b"authorization", f"Bearer {tenant_a.raw_key}".encode())]) is None
