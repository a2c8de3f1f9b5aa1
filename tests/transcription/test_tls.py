"""wss:// and https:// straight from the server's own TLS endpoint, with a private CA made at test time."""

import datetime
import ipaddress
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bench.evaluation import word_error_rate
from tests.support.cli import run_client
from tests.support.servers import gateway_server
from tests.support.tenants import make_tenant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

JFK = "and so my fellow americans ask not what your country can do for you ask what you can do for your country"


def _pem(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def make_private_ca(folder: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server key, server certificate) for 127.0.0.1 and localhost."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "asrplatform test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )  # digital_signature, key_cert_sign, crl_sign
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return (
        _pem(folder / "ca.pem", ca.public_bytes(serialization.Encoding.PEM)),
        _pem(
            folder / "server-key.pem",
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        ),
        _pem(folder / "server-cert.pem", server.public_bytes(serialization.Encoding.PEM)),
    )


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory) -> tuple[Path, Path, Path]:
    return make_private_ca(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_server(django_db_setup, django_db_blocker, private_ca):
    ca, key, cert = private_ca
    with gateway_server(tls=(key, cert)) as server:
        yield server


def test_cli_streams_jfk_over_wss_trusting_the_private_ca(tls_server, private_ca, eval_dir):
    key = make_tenant("tls").raw_key
    wav = str(eval_dir / "real" / "jfk.wav")
    result = run_client(wav, "--url", tls_server.url, "--api-key", key, "--cafile", str(private_ca[0]), "--json")
    assert tls_server.url.startswith("wss://")
    assert result.returncode == 0, result.stderr
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    assert messages[0]["type"] == "ready" and messages[-1]["type"] == "closed"
    finals = [m for m in messages if m["type"] == "final"]
    assert finals and word_error_rate([JFK], [" ".join(f["text"] for f in finals)]) <= 0.1
    assert messages[-1]["segments"] == len(finals) and messages[-1]["audio_seconds"] == pytest.approx(11.0, abs=0.2)


def test_cli_without_the_ca_refuses_the_certificate_with_a_clear_message(tls_server, eval_dir):
    result = run_client(str(eval_dir / "real" / "goforward.wav"), "--url", tls_server.url, "--api-key", "asr_x")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cannot connect" in result.stderr and "CERTIFICATE_VERIFY_FAILED" in result.stderr


def test_https_health_and_schema_over_the_same_tls_endpoint(tls_server, private_ca):
    context = ssl.create_default_context(cafile=str(private_ca[0]))
    with urllib.request.urlopen(f"{tls_server.http_url}/healthz", context=context, timeout=30) as response:
        assert response.status == 200 and json.load(response) == {"status": "ok"}
    with urllib.request.urlopen(f"{tls_server.http_url}/api/schema/", context=context, timeout=30) as response:
        assert response.status == 200 and response.read().startswith(b"openapi: 3")
    with pytest.raises(urllib.error.URLError) as untrusted:
        urllib.request.urlopen(f"{tls_server.http_url}/healthz", context=ssl.create_default_context(), timeout=30)
    assert isinstance(untrusted.value.reason, ssl.SSLCertVerificationError)
