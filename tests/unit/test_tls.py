"""The gateway's certificates: the private CA, the wildcard certificate, provided-file checks, files on disk."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from clearml_stack import gateway, tls
from clearml_stack.errors import StackError
from clearml_stack.settings import Settings, defaults

DOMAIN = "ml.example.com"
NOW = dt.datetime(2026, 1, 15, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def ca() -> tls.Material:
    return tls.new_ca(DOMAIN, NOW)


@pytest.fixture(scope="module")
def leaf(ca) -> tls.Material:
    return tls.new_leaf(ca, DOMAIN, NOW)


def test_ca_can_sign_only_end_entity_certificates(ca):
    cert = x509.load_pem_x509_certificate(ca.cert_pem)
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert cert.not_valid_after_utc - NOW > dt.timedelta(days=3600)


def test_leaf_covers_the_wildcard_the_bare_domain_and_the_three_names(ca, leaf):
    cert = x509.load_pem_x509_certificate(leaf.cert_pem)
    assert tls.dns_names(cert) == [f"*.{DOMAIN}", DOMAIN, f"app.{DOMAIN}", f"api.{DOMAIN}", f"files.{DOMAIN}"]
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.cert_pem))
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in list(eku)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # Apple platforms refuse server certificates valid for more than 825 days
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(days=825, minutes=5)


def test_leaf_problem_says_when_to_make_a_new_one(ca, leaf):
    assert tls.leaf_problem(leaf.cert_pem, ca.cert_pem, DOMAIN, NOW) is None
    assert tls.leaf_problem(None, ca.cert_pem, DOMAIN, NOW) == "there is none yet"
    assert "does not cover app.other.org" in tls.leaf_problem(leaf.cert_pem, ca.cert_pem, "other.org", NOW)
    other_ca = tls.new_ca(DOMAIN, NOW)
    assert tls.leaf_problem(leaf.cert_pem, other_ca.cert_pem, DOMAIN, NOW) == "it was not signed by the current CA"
    later = NOW + dt.timedelta(days=tls.LEAF_DAYS - 10)
    assert tls.leaf_problem(leaf.cert_pem, ca.cert_pem, DOMAIN, later).startswith("it expires on")


@pytest.mark.parametrize("patterns, name, expected", [
    (["*.a.com"], "app.a.com", True),
    (["*.a.com"], "x.app.a.com", False),  # a wildcard spans exactly one label
    (["*.a.com"], "a.com", False),
    (["a.com"], "A.COM", True),
    (["api.a.com"], "app.a.com", False),
])
def test_wildcard_matching(patterns, name, expected):
    assert tls.covers(patterns, name) is expected


def test_provided_certificate_checks(ca, leaf):
    assert tls.check_provided(leaf.cert_pem + ca.cert_pem, leaf.key_pem, DOMAIN, "c.pem", "k.pem", NOW) == []
    with pytest.raises(StackError, match="is not the key of the certificate"):
        tls.check_provided(leaf.cert_pem, tls.new_leaf(ca, DOMAIN, NOW).key_pem, DOMAIN, "c.pem", "k.pem", NOW)
    with pytest.raises(StackError, match="does not cover app.other.org, api.other.org, files.other.org"):
        tls.check_provided(leaf.cert_pem, leaf.key_pem, "other.org", "c.pem", "k.pem", NOW)
    with pytest.raises(StackError, match="expired"):
        tls.check_provided(leaf.cert_pem, leaf.key_pem, DOMAIN, "c.pem", "k.pem", NOW + dt.timedelta(days=900))
    with pytest.raises(StackError, match="holds no PEM certificate"):
        tls.check_provided(b"not a cert", leaf.key_pem, DOMAIN, "c.pem", "k.pem", NOW)
    with pytest.raises(StackError, match="holds no PEM private key"):
        tls.check_provided(leaf.cert_pem, b"nope", DOMAIN, "c.pem", "k.pem", NOW)
    warned = tls.check_provided(leaf.cert_pem, leaf.key_pem, DOMAIN, "c.pem", "k.pem",
                                NOW + dt.timedelta(days=tls.LEAF_DAYS - 5))
    assert any("expires on" in w for w in warned) and any("full chain" in w for w in warned)


def test_passphrase_protected_keys_are_refused_with_the_command_to_decrypt(leaf):
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(leaf.key_pem, None)
    locked = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.BestAvailableEncryption(b"pw"))
    with pytest.raises(StackError) as info:
        tls.check_provided(leaf.cert_pem, locked, DOMAIN, "c.pem", "k.pem", NOW)
    assert "passphrase" in info.value.message and "openssl pkey" in info.value.fix


# --- files on disk -----------------------------------------------------------------------------


def settings_in(tmp_path: Path, **over: str) -> Settings:
    return Settings(values={**defaults(), "CLEARML_ACCESS_MODE": "subdomains", "CLEARML_DOMAIN": DOMAIN,
                            "CLEARML_DATA_DIR": str(tmp_path / "data"), **over}, env_file=tmp_path / ".env")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_self_signed_files_keys_private_ca_key_outside_nginx_and_stable(tmp_path):
    s = settings_in(tmp_path, CLEARML_TLS="self-signed")
    first = gateway.render(s)
    assert first.new_ca
    assert mode_of(gateway.ca_dir(s) / "ca.key") == 0o600 and mode_of(gateway.tls_dir(s) / "gateway.key") == 0o600
    assert sorted(p.name for p in gateway.tls_dir(s).iterdir()) == ["gateway.crt", "gateway.key"]
    served = (gateway.tls_dir(s) / "gateway.crt").read_bytes()
    before = gateway.fingerprint(s)
    again = gateway.render(s)
    assert again.lines == [] and not again.new_ca
    assert (gateway.tls_dir(s) / "gateway.crt").read_bytes() == served and gateway.fingerprint(s) == before


def test_a_new_domain_gets_a_new_certificate_from_the_same_ca(tmp_path):
    s = settings_in(tmp_path, CLEARML_TLS="self-signed")
    gateway.render(s)
    ca_before = gateway.ca_cert_path(s).read_bytes()
    moved = settings_in(tmp_path, CLEARML_TLS="self-signed", CLEARML_DOMAIN="new.example.org")
    report = gateway.render(moved)
    assert gateway.ca_cert_path(moved).read_bytes() == ca_before and not report.new_ca
    assert any("does not cover app.new.example.org" in line for line in report.lines)
    leaf = x509.load_pem_x509_certificate((gateway.tls_dir(moved) / "gateway.crt").read_bytes())
    assert "*.new.example.org" in tls.dns_names(leaf)


def test_provided_files_are_checked_then_copied_and_removed_when_tls_moves_off(tmp_path, ca, leaf):
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    cert.write_bytes(leaf.cert_pem + ca.cert_pem)
    key.write_bytes(leaf.key_pem)
    s = settings_in(tmp_path, CLEARML_TLS="provided", CLEARML_TLS_CERT=str(cert), CLEARML_TLS_KEY=str(key))
    gateway.render(s, now=NOW)
    assert (gateway.tls_dir(s) / "gateway.key").read_bytes() == leaf.key_pem
    assert mode_of(gateway.tls_dir(s) / "gateway.key") == 0o600
    gateway.render(settings_in(tmp_path, CLEARML_TLS="external"))
    assert list(gateway.tls_dir(s).iterdir()) == []


def test_unreadable_provided_file_names_the_setting_and_writes_no_config(tmp_path):
    s = settings_in(tmp_path, CLEARML_TLS="provided", CLEARML_TLS_CERT=str(tmp_path / "missing.pem"),
                    CLEARML_TLS_KEY=str(tmp_path / "missing.key"))
    with pytest.raises(StackError, match="CLEARML_TLS_CERT=.*missing.pem: cannot read"):
        gateway.render(s)
    assert not gateway.conf_dir(s).exists()


def test_other_modes_write_nothing(tmp_path):
    s = settings_in(tmp_path, CLEARML_ACCESS_MODE="tunnel", CLEARML_TLS="self-signed")
    assert gateway.render(s).lines == [] and not (tmp_path / "data").exists()
    assert gateway.fingerprint(s) == "none"


def test_rsa_certificates_as_issued_by_public_cas_are_accepted():
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DOMAIN)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(NOW).not_valid_after(NOW + dt.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(f"*.{DOMAIN}")]), critical=False)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    assert tls.check_provided(pem, key_pem, DOMAIN, "c.pem", "k.pem", NOW) == []
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(StackError, match="is not the key"):
        tls.check_provided(pem, other, DOMAIN, "c.pem", "k.pem", NOW)
