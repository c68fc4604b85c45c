"""TLS material: the development CA made by ``mssante init`` and server SSL contexts.

Production deployments put IGC-Santé certificates at the configured paths instead. Only TLS 1.2
and later are offered (../shared/domain/README.md §4).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mailserver.files import atomic_write

__all__ = ["make_ca", "issue_certificate", "server_context", "client_context", "write_private"]


def write_private(path: Path, data: bytes) -> None:
    """Write a private key file (mode 0600) atomically, creating its folder if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data)


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_ca(cert_path: Path, key_path: Path, name: str) -> None:
    """A self-signed CA (RSA-2048, SHA-256), valid 5 years."""
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=5 * 365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_private(key_path, _pem_key(key))


def issue_certificate(ca_cert_path: Path, ca_key_path: Path, cert_path: Path, key_path: Path,
                      hostnames: list[str], *, organisation: str = "MSSante demo",
                      ou: str | None = None, key_type: str = "rsa") -> None:
    """A server+client certificate signed by the CA, for ``hostnames`` (first = CN).

    The subject follows the operator DN shape ``CN=<fqdn>,OU=<idNat_Struct>,O=<name>,C=FR``.
    """
    ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
        ec.generate_private_key(ec.SECP256R1()) if key_type == "ec" else _key())
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
             x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation)]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0]))
    sans: list[x509.GeneralName] = []
    for h in hostnames:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(x509.Name(attrs))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=825))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                          + ca_cert.public_bytes(serialization.Encoding.PEM))
    write_private(key_path, _pem_key(key))


def server_context(cert: Path, key: Path,
                   extra: list[tuple[Path, Path]] | None = None) -> ssl.SSLContext:
    """A server context: TLS 1.2+, no compression, server cipher preference.

    ``extra`` adds more certificate chains (an ECDSA one beside the RSA-2048 one): OpenSSL
    picks per client by the signature algorithms it offers. For mail clients an ECDSA handshake
    costs the server a small fraction of an RSA-2048 signature.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:!aNULL:!MD5:!DSS")
    ctx.load_cert_chain(str(cert), str(key))
    for extra_cert, extra_key in extra or ():
        if extra_cert.exists() and extra_key.exists():
            ctx.load_cert_chain(str(extra_cert), str(extra_key))
    return ctx


def client_context(cafile: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx
