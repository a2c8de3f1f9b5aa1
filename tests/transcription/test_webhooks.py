"""Callback targets and deliveries in-process: which addresses are refused, what one request may cost,
how attempts are claimed, recorded, retried and given up; against real receivers on 127.0.0.1."""

import hashlib
import hmac
import ipaddress
import socket
import threading
import time
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts import selectors as account_selectors
from bench.evaluation import load_manifest
from tests.support.receiver import CallbackReceiver
from transcription import webhook_targets, webhooks
from transcription.models import FileTranscription, WebhookDelivery
from transcription.webhook_targets import TargetRefused


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("169.254.169.254", False),  # link-local: cloud metadata
        ("224.0.0.1", False),
        ("239.255.255.250", False),
        ("240.0.0.1", False),  # reserved
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),  # loopback in an IPv6 costume
        ("::ffff:10.0.0.1", False),
    ],
)
def test_only_public_unicast_addresses_are_allowed(address, allowed):
    assert webhook_targets.address_allowed(ipaddress.ip_address(address)) is allowed


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://example.com/hook", "http:// or https://"),
        ("gopher://127.0.0.1:70/", "http:// or https://"),
        ("http:///no-host", "http:// or https://"),
        ("https://user:secret@example.com/hook", "Credentials"),
        ("http://example.com:99999/", "not a valid URL"),
        ("http://no-such-host.invalid/hook", "does not resolve"),
        ("http://localhost:8000/hook", "public addresses only"),
        ("http://127.0.0.1/hook", "public addresses only"),
        ("http://[::1]/hook", "public addresses only"),
        ("http://0x7f000001/hook", "public addresses only"),
        ("http://" + "a" * 2050 + ".com/", "at most 2048"),
    ],
)
def test_a_callback_url_we_will_not_call_is_refused_with_why(settings, url, says):
    settings.ASR_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(TargetRefused) as refused:
        webhook_targets.check(url)
    assert says in str(refused.value)


def test_the_allow_setting_lets_loopback_through_and_the_target_is_the_checked_address(settings):
    settings.ASR_WEBHOOK_ALLOW_PRIVATE = True
    target = webhook_targets.check("http://localhost:8123/hooks/asr?x=1")
    assert ipaddress.ip_address(target.address).is_loopback
    assert (target.host, target.port, target.path) == ("localhost", 8123, "/hooks/asr?x=1")


def test_the_signature_is_the_hmac_of_timestamp_dot_body_and_binds_the_timestamp():
    body = b'{"metadata": {}}'
    expected = hmac.new(b"whsec_test", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert webhooks.signature("whsec_test", 1700000000, body) == f"sha256={expected}"
    assert webhooks.signature("whsec_test", 1700000001, body) != webhooks.signature("whsec_test", 1700000000, body)


def test_backoff_doubles_from_the_setting_up_to_its_cap(settings):
    settings.ASR_WEBHOOK_BACKOFF_S, settings.ASR_WEBHOOK_BACKOFF_MAX_S = 10, 60
    assert [webhooks.backoff_s(n) for n in range(1, 6)] == [10, 20, 40, 60, 60]


def test_a_redirect_is_an_answer_not_a_hop(settings):
    settings.ASR_WEBHOOK_ALLOW_PRIVATE = True
    with CallbackReceiver([302]) as receiver:
        answer = webhook_targets.send(webhook_targets.check(receiver.url), method="POST", body=b"{}", headers={})
        time.sleep(0.2)
        assert len(receiver.requests) == 1
    assert answer.status == 302 and not answer.ok


class _RawServer:
    """A listening socket that answers each connection with ``reply`` (nothing: it never answers)
    and then holds it open."""

    def __init__(self, reply: bytes = b"") -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.reply, self.held = reply, []
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}/hook"

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.held.append(connection)
            if self.reply:
                connection.sendall(self.reply)

    def close(self) -> None:
        self.socket.close()
        for connection in self.held:
            connection.close()


def test_a_receiver_that_never_answers_costs_one_timeout(settings):
    settings.ASR_WEBHOOK_ALLOW_PRIVATE, settings.ASR_WEBHOOK_TIMEOUT_S = True, 0.5
    silent = _RawServer()
    try:
        started = time.monotonic()
        answer = webhook_targets.send(webhook_targets.check(silent.url), method="POST", body=b"{}", headers={})
        assert time.monotonic() - started < 2
    finally:
        silent.close()
    assert answer.status is None and not answer.ok and "TimeoutError" in answer.error


def test_a_huge_answer_is_not_read_beyond_a_few_bytes(settings):
    settings.ASR_WEBHOOK_ALLOW_PRIVATE, settings.ASR_WEBHOOK_TIMEOUT_S = True, 5
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n"
    endless = _RawServer(head + b"x" * 64 * 1024)  # then it holds the connection, the rest never comes
    try:
        started = time.monotonic()
        answer = webhook_targets.send(webhook_targets.check(endless.url), method="POST", body=b"{}", headers={})
        assert time.monotonic() - started < 2
    finally:
        endless.close()
    assert answer.status == 200 and answer.ok


@pytest.fixture
def goforward(eval_dir):
    return next(e for e in load_manifest(eval_dir / "real") if e.audio_path.name == "goforward.wav")


def _job_with_callback(tenant, audio_path, url: str, *, payload: str = "rest") -> FileTranscription:
    upload = SimpleUploadedFile("goforward.wav", audio_path.read_bytes(), content_type="audio/wav")
    callback = webhooks.CallbackRequest(url=url, method="POST", payload=payload)
    return webhooks.job_create_with_callback(
        tenant_id=tenant.tenant.pk,
        api_key_id=tenant.api_key.pk,
        upload=upload,
        options={},
        protocol="rest",
        callback=callback,
    )


def _end(job: FileTranscription) -> None:
    FileTranscription.objects.filter(pk=job.pk).update(status=FileTranscription.Status.DONE)


@pytest.mark.django_db
def test_the_secret_exists_once_a_callback_is_asked_for_and_only_ended_jobs_are_claimed(tenant_a, goforward):
    assert account_selectors.webhook_secret_get(tenant_id=tenant_a.tenant.pk) is None
    job = _job_with_callback(tenant_a, goforward.audio_path, "https://example.com/hook")
    assert account_selectors.webhook_secret_get(tenant_id=tenant_a.tenant.pk)
    assert webhooks.deliveries_claim(limit=10) == []  # the job is still queued
    _end(job)
    (claimed,) = webhooks.deliveries_claim(limit=10)
    assert webhooks.deliveries_claim(limit=10) == []  # leased to whoever claimed it
    later = timezone.now() + timedelta(minutes=5)
    assert webhooks.deliveries_claim(limit=10, now=later) == [claimed]  # its claimer died: taken again
    assert WebhookDelivery.objects.get(pk=claimed).attempts == 2


@pytest.mark.django_db
def test_a_private_target_is_refused_again_at_delivery_and_given_up_after_the_last_attempt(
    settings, tenant_a, goforward
):
    settings.ASR_WEBHOOK_MAX_ATTEMPTS, settings.ASR_WEBHOOK_BACKOFF_S = 2, 0
    with CallbackReceiver() as receiver:
        job = _job_with_callback(tenant_a, goforward.audio_path, receiver.url)  # allowed when it was asked for
        _end(job)
        settings.ASR_WEBHOOK_ALLOW_PRIVATE = False  # ... and no longer when it is sent
        for attempt in (1, 2):
            (claimed,) = webhooks.deliveries_claim(limit=10)
            answer = webhooks.deliver(claimed)
            assert answer.status is None and "public addresses only" in answer.error
            assert WebhookDelivery.objects.get(pk=claimed).attempts == attempt
        assert receiver.requests == []
    delivery = WebhookDelivery.objects.get(job=job)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 2, None)
    assert "public addresses only" in delivery.last_error
    assert webhooks.deliveries_claim(limit=10, now=timezone.now() + timedelta(days=1)) == []


@pytest.mark.django_db
def test_an_attempt_is_recorded_and_a_failure_waits_its_backoff(settings, tenant_a, goforward):
    settings.ASR_WEBHOOK_ALLOW_PRIVATE, settings.ASR_WEBHOOK_BACKOFF_S = True, 30
    with CallbackReceiver([503]) as receiver:
        job = _job_with_callback(tenant_a, goforward.audio_path, receiver.url)
        _end(job)
        (claimed,) = webhooks.deliveries_claim(limit=10)
        assert webhooks.deliver(claimed).status == 503
        assert webhooks.deliveries_claim(limit=10) == []  # not before its backoff
        (again,) = webhooks.deliveries_claim(limit=10, now=timezone.now() + timedelta(seconds=31))
        assert webhooks.deliver(again).ok
        first, second = receiver.wait_for(2)
    delivery = WebhookDelivery.objects.get(job=job)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 2, 200)
    assert first.headers["x-asr-request-id"] == str(job.pk) and second.headers["x-asr-attempt"] == "2"


@pytest.mark.django_db
def test_a_callback_that_cannot_be_prepared_counts_as_a_failed_attempt(settings, tenant_a, goforward):
    settings.ASR_WEBHOOK_MAX_ATTEMPTS = 1
    job = _job_with_callback(tenant_a, goforward.audio_path, "https://example.com/hook")
    _end(job)
    WebhookDelivery.objects.filter(job=job).update(payload="gone")
    (claimed,) = webhooks.deliveries_claim(limit=10)
    assert "could not be prepared" in webhooks.deliver(claimed).error
    assert WebhookDelivery.objects.get(job=job).status == "failed"  # not retried for ever
