"""Certificates for the gateway: a private CA and a wildcard certificate, checks of provided ones.

Made with the ``cryptography`` package rather than the ``openssl`` command: the same code runs on any
host (no dependence on the installed OpenSSL/LibreSSL flavour and its flags), every extension a
current browser checks is set explicitly, and everything here is a pure function on PEM bytes that
tests can judge without a subprocess. Keys are ECDSA P-256 (accepted by every current browser,
Python, curl and nginx).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from .errors import StackError

CA_DAYS = 3650
#: Apple platforms refuse TLS server certificates valid for more than 825 days, even from a private CA
LEAF_DAYS = 825
RENEW_BEFORE_DAYS = 30


@dataclass(frozen=True)
class Material:
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes


def names_for(domain: str) -> list[str]:
    """Every name the gateway certificate must cover: the wildcard, the bare domain, and the three services."""
    return [f"*.{domain}", domain, f"app.{domain}", f"api.{domain}", f"files.{domain}"]


def service_names(domain: str) -> list[str]:
    return [f"app.{domain}", f"api.{domain}", f"files.{domain}"]


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.timezone.utc)


def _new_key():  # noqa: ANN202
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key) -> bytes:  # noqa: ANN001
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def new_ca(domain: str, now: dt.datetime | None = None) -> Material:
    """A CA certificate (10 years, may only sign end-entity certificates) and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    now = _now(now)
    key = _new_key()
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "clearml-lightning"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"clearml-lightning CA for {domain}"[:64]),
    ])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return Material(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def new_leaf(ca: Material, domain: str, now: dt.datetime | None = None) -> Material:
    """A server certificate for :func:`names_for` ``domain``, signed by ``ca`` (825 days)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = _now(now)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    key = _new_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"*.{domain}"[:64])]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names_for(domain)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False,
                                     crl_sign=False, content_commitment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return Material(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


# --- reading certificates ------------------------------------------------------------------


def load_chain(pem: bytes, what: str) -> list:
    from cryptography import x509

    try:
        chain = x509.load_pem_x509_certificates(pem)
    except ValueError:
        chain = []
    if not chain:
        raise StackError(f"{what} holds no PEM certificate", "give the certificate chain in PEM form "
                         "(-----BEGIN CERTIFICATE-----), e.g. fullchain.pem")
    return chain


def dns_names(cert) -> list[str]:  # noqa: ANN001
    from cryptography import x509

    try:
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                    .get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        return []


def covers(patterns: list[str], name: str) -> bool:
    """True when one of the certificate ``patterns`` matches ``name`` (a wildcard spans one label)."""
    name = name.lower().rstrip(".")
    for pattern in (p.lower().rstrip(".") for p in patterns):
        if pattern == name:
            return True
        if pattern.startswith("*.") and "." in name and name.split(".", 1)[1] == pattern[2:]:
            return True
    return False


def fingerprint(cert_pem: bytes) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def not_after(cert_pem: bytes) -> dt.datetime:
    return load_chain(cert_pem, "certificate")[0].not_valid_after_utc


def leaf_problem(leaf_pem: bytes | None, ca_pem: bytes, domain: str, now: dt.datetime | None = None) -> str | None:
    """Why the self-signed gateway certificate must be made again, or None when it is still good."""
    from cryptography import x509

    if not leaf_pem:
        return "there is none yet"
    try:
        leaf = x509.load_pem_x509_certificate(leaf_pem)
        ca = x509.load_pem_x509_certificate(ca_pem)
    except ValueError:
        return "it cannot be read"
    try:
        leaf.verify_directly_issued_by(ca)
    except Exception:  # noqa: BLE001 - InvalidSignature, or a key type that cannot have signed it
        return "it was not signed by the current CA"
    missing = [n for n in service_names(domain) if not covers(dns_names(leaf), n)]
    if missing:
        return f"it does not cover {', '.join(missing)}"
    if leaf.not_valid_after_utc - _now(now) < dt.timedelta(days=RENEW_BEFORE_DAYS):
        return f"it expires on {leaf.not_valid_after_utc:%Y-%m-%d}"
    return None


def check_provided(cert_pem: bytes, key_pem: bytes, domain: str, cert_path: str, key_path: str,
                   now: dt.datetime | None = None) -> list[str]:
    """Refuse a provided certificate nginx or browsers would reject; return warnings (pure)."""
    from cryptography.hazmat.primitives import serialization

    chain = load_chain(cert_pem, f"CLEARML_TLS_CERT={cert_path}")
    leaf = chain[0]
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise StackError(f"CLEARML_TLS_KEY={key_path} is encrypted with a passphrase; nginx cannot ask for it",
                         f"decrypt it once: openssl pkey -in {key_path} -out key.pem (keep it mode 0600)") from None
    except ValueError:
        raise StackError(f"CLEARML_TLS_KEY={key_path} holds no PEM private key",
                         "give the private key in PEM form (-----BEGIN PRIVATE KEY-----)") from None
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*spki) != leaf.public_key().public_bytes(*spki):
        raise StackError(f"CLEARML_TLS_KEY={key_path} is not the key of the certificate in {cert_path}",
                         "give the key that was created with this certificate (the first one in the file)")
    missing = [n for n in service_names(domain) if not covers(dns_names(leaf), n)]
    if missing:
        raise StackError(
            f"the certificate in {cert_path} does not cover {', '.join(missing)} "
            f"(it names: {', '.join(dns_names(leaf)) or 'nothing in subjectAltName'})",
            f"use a certificate for *.{domain} (or those three names), or CLEARML_TLS=self-signed",
        )
    now = _now(now)
    if leaf.not_valid_after_utc <= now:
        raise StackError(f"the certificate in {cert_path} expired on {leaf.not_valid_after_utc:%Y-%m-%d}",
                         "renew it, then run `inv up` (it copies the new files to the gateway)")
    warnings = []
    if leaf.not_valid_after_utc - now < dt.timedelta(days=14):
        warnings.append(f"the certificate in {cert_path} expires on {leaf.not_valid_after_utc:%Y-%m-%d}: "
                        "renew it, then run `inv up`")
    if len(chain) == 1 and leaf.issuer != leaf.subject:
        warnings.append(f"{cert_path} holds only the server certificate: if clients report an unknown issuer, "
                        "give the full chain (e.g. fullchain.pem instead of cert.pem)")
    return warnings


def trust_instructions(ca_path: str) -> list[str]:
    """How to make browsers and ClearML clients trust the kit's CA (one step per line)."""
    return [
        f"copy {ca_path} to every machine that opens the web UI or runs the SDK or agents, then:",
        "  Linux (system, curl): sudo cp ca.crt /usr/local/share/ca-certificates/clearml-lightning.crt "
        "&& sudo update-ca-certificates",
        "  macOS: sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain ca.crt",
        "  Windows (admin prompt): certutil -addstore -f Root ca.crt",
        "  Firefox: Settings > Privacy & Security > Certificates > View Certificates > Authorities > Import",
        "  Python SDK and agents (requests has its own CA list): after the Linux step, "
        "export REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt (a bundle with the public CAs too), "
        "or in clearml.conf: api { verify_certificate: \"/path/to/ca.crt\" } (API calls only)",
        "never turn verification off (verify_certificate: false) instead: anyone on the path could read logins",
    ]
