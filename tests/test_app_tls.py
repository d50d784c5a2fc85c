"""HTTPS: `stylefusion-server --cert-file F --key-file F` serves the pages over TLS."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from webrtc_helpers import free_port

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parent.parent


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, as cert.pem and key.pem."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stylefusion test")])
    now = datetime.datetime.now(datetime.UTC)
    alt_names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def server_command(models_dir: Path, tmp_path: Path, port: int, *extra: str) -> list[str]:
    """The server CLI on CPU with the tiny test styles."""
    options = ["--port", str(port), "--models-dir", str(models_dir)]
    options += ["--data-dir", str(tmp_path / "var"), "--device", "cpu", "--threads", "1"]
    return [sys.executable, "-m", "server", *options, "--no-compile", *extra]


def fetch_page(url: str, context: ssl.SSLContext, deadline: float) -> str:
    """GET url over HTTPS, retrying while the server starts."""
    while True:
        try:
            with urllib.request.urlopen(url, context=context, timeout=5) as response:
                return response.read().decode()
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_server_serves_the_live_page_over_https(models_dir, tmp_path):
    cert_file, key_file = self_signed(tmp_path)
    port = free_port()
    command = server_command(models_dir, tmp_path, port, "--cert-file", str(cert_file))
    command += ["--key-file", str(key_file), "--admin-token", "tls-test-token-1234"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        trusting = ssl.create_default_context(cafile=str(cert_file))
        html = fetch_page(f"https://127.0.0.1:{port}/", trusting, time.monotonic() + 60)
        assert 'id="start"' in html and 'id="remote"' in html
        with pytest.raises(urllib.error.URLError):  # an untrusting client sees the TLS handshake
            urllib.request.urlopen(f"https://127.0.0.1:{port}/", timeout=5)
    finally:
        server.terminate()
        server.communicate(timeout=30)


def test_unreadable_certificate_is_one_line_and_exit_2(models_dir, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    command = server_command(models_dir, tmp_path, free_port(), "--cert-file", str(bad))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [*command, "--key-file", str(bad)], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "cannot load the certificate" in result.stderr and "Traceback" not in result.stderr


def test_cert_file_without_key_file_is_refused(models_dir, tmp_path):
    command = server_command(models_dir, tmp_path, free_port(), "--cert-file", "cert.pem")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--key-file" in result.stderr
