"""TLS trust and proxy credentials are local set-up (#18.8): 78 at once, never two minutes of retries.

The stand-in ECR API serves HTTPS with a certificate from a private CA made
by the ``openssl`` CLI (tests/aws_fakes.private_ca). botocore trusts what
``AWS_CA_BUNDLE``, ``ca_bundle`` in the profile or ``REQUESTS_CA_BUNDLE``
names, not ``SSL_CERT_FILE``; a run that trusts none of them, or is given a
bundle that is missing or not PEM, must say so and which file. A real proxy
on loopback that answers 407 must be named, with its credentials.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_fakes import HOST, PYTHONS, ProxyWantingCredentials, errors_of, private_ca, run
from standin_ecr import StandinECR

TIMEOUT = "30s"  # long enough that a retried failure would show: "at once" is under 10 s


@pytest.fixture
def tls_ecr(token_password: str, tmp_path: Path) -> Iterator[tuple[StandinECR, str]]:
    ca, cert, key = private_ca(tmp_path)
    with StandinECR(password=token_password, tls=(cert, key)) as standin:
        yield standin, ca


def config_for(write_config, url: str) -> str:  # type: ignore[no-untyped-def]
    return write_config(f"[defaults]\nendpoint_url = {url}\nstores = file\ntimeout = {TIMEOUT}\n\n[{HOST}]\n")


def clear_trust_and_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE",
                 "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.mark.parametrize("python", PYTHONS)
def test_an_untrusted_certificate_is_set_up_named_at_once(python, tls_ecr, aws_env, write_config, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Was: 75 after 111 s and 12 attempts. SSL_CERT_FILE is set and ignored by botocore: the message says so."""
    ecr, ca = tls_ecr
    clear_trust_and_proxies(monkeypatch)
    monkeypatch.setenv("SSL_CERT_FILE", ca)
    result, took = run(python, "--config", config_for(write_config, ecr.url))
    assert result.code == 78, result
    assert took < 10, took
    (line,) = errors_of(result)
    for part in (ecr.url, "not trusted", "AWS_CA_BUNDLE", "ca_bundle", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        assert part in line, (part, line)
    assert "ignore" in line, line
    assert len(ecr.calls) == 0


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("bundle", ["missing", "not-pem"])
def test_a_ca_bundle_that_is_missing_or_not_pem_is_named(  # type: ignore[no-untyped-def]
        python, bundle, tls_ecr, aws_env, write_config, monkeypatch, tmp_path) -> None:
    """Was: the same 75 after two minutes, naming neither the variable nor the file."""
    ecr, _ = tls_ecr
    clear_trust_and_proxies(monkeypatch)
    path = tmp_path / f"{bundle}.pem"
    if bundle == "not-pem":
        path.write_text("this is not a certificate\n")
    monkeypatch.setenv("AWS_CA_BUNDLE", str(path))
    result, took = run(python, "--config", config_for(write_config, ecr.url))
    assert result.code == 78, result
    assert took < 10, took
    (line,) = errors_of(result)
    assert str(path) in line and "AWS_CA_BUNDLE" in line and ecr.url in line, line
    assert ("does not exist" if bundle == "missing" else "PEM") in line, line


@pytest.mark.parametrize("variable", ["AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "ca_bundle"])
def test_the_private_ca_named_where_botocore_reads_it_is_trusted(variable, tls_ecr, aws_env, write_config, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The working path of the settings the messages name (so the failures above are about trust)."""
    ecr, ca = tls_ecr
    clear_trust_and_proxies(monkeypatch)
    if variable == "ca_bundle":
        Path(aws_env["AWS_CONFIG_FILE"]).write_text(f"[default]\nca_bundle = {ca}\n")
    else:
        monkeypatch.setenv(variable, ca)
    result, _ = run(PYTHONS[0].values[0], "--config", config_for(write_config, ecr.url))
    assert result.code == 0, result
    assert len(ecr.ecr_calls()) == 1


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_proxy_wanting_credentials_is_named(python, scheme, tls_ecr, ecr, aws_env, write_config, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Was: 78 "… (HTTP 407: retrying will not help; check endpoint_url and region)" (http), 75 after the
    deadline (https, CONNECT refused). The proxy is named without its password."""
    tls, ca = tls_ecr
    clear_trust_and_proxies(monkeypatch)
    monkeypatch.setenv("AWS_CA_BUNDLE", ca)
    with ProxyWantingCredentials() as proxy:
        monkeypatch.setenv(f"{scheme.upper()}_PROXY", f"http://builder:hunter2@{proxy.address}")
        result, took = run(python, "--config", config_for(write_config, (tls if scheme == "https" else ecr).url))
        assert proxy.requests, "the proxy was not asked"
    assert result.code == 78, result
    assert took < 10, took
    (line,) = errors_of(result)
    assert proxy.address in line and "407" in line and "proxy" in line and f"{scheme.upper()}_PROXY" in line, line
    assert "credentials" in line and "check endpoint_url and region" not in line, line
    assert "hunter2" not in result.output
