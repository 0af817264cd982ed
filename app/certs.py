"""``gensc certs DIR``: a development CA, one certificate per service, and a bearer token.

Writes, for trying TLS and tokens in one command (never for production):
    ca.pem, ca-key.pem                      a self-signed CA (keep ca-key.pem out of services)
    NAME.pem, NAME-key.pem                  per name (sender, channel, receiver, client):
                                            valid for NAME, localhost and 127.0.0.1, usable
                                            as a server and as a client certificate (mTLS)
    token                                   a random bearer token (32 bytes, URL-safe base64)
Keys are ECDSA P-256, written with mode 0600. Real deployments use certificates from their
own CA (docs/security.md, "Real certificates"): any PEM chain and key work with --tls-cert/--tls-key/--tls-ca.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NAMES = ("sender", "channel", "receiver", "client")


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def _write_cert(path: Path, cert) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def make_certs(out: Path, names: tuple[str, ...] = NAMES, days: int = 365) -> dict[str, str]:
    """Write the CA, a certificate per name and a token under ``out``; return what was written."""

    if not 1 <= days <= 3650:
        raise ValueError(f"days must be in 1..3650, got {days}")
    for name in names:
        if not name or not all(c.isalnum() or c in "-." for c in name):
            raise ValueError(f"certificate name {name!r}: use letters, digits, '-' and '.' (a host name)")
    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    start, end = now - dt.timedelta(minutes=5), now + dt.timedelta(days=days)

    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gensc development CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(out / "ca-key.pem", ca_key)
    _write_cert(out / "ca.pem", ca)
    written = {"ca": str(out / "ca.pem")}
    for name in names:
        key = _key()
        loopback = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
        alt = [x509.DNSName(name), x509.DNSName("localhost"), loopback]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write_key(out / f"{name}-key.pem", key)
        _write_cert(out / f"{name}.pem", cert)
        written[name] = str(out / f"{name}.pem")
    token = out / "token"
    fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(32) + "\n")
    written["token"] = str(token)
    return written


def run(args) -> int:
    try:
        written = make_certs(Path(args.dir), tuple(args.names.split(",")), args.days)
    except (ValueError, OSError) as e:
        print(f"gensc certs: {e}", file=sys.stderr)
        return 2
    d = args.dir
    print(f"wrote a development CA, certificates for {args.names} and a token under {d}/")
    print("try it (every service and the client take the same flags, or GENSC_TLS_* variables):")
    print(
        f"  gensc demo --tls-cert {d}/client.pem --tls-key {d}/client-key.pem --tls-ca {d}/ca.pem "
        f"--tls-client-auth --token-file {d}/token"
    )
    print(f"  ({len(written) - 2} certificates; for production use your own CA, see docs/security.md)")
    return 0


def add_command(sub) -> None:
    p = sub.add_parser("certs", help="write a development CA, per-service certificates and a token")
    p.add_argument("dir", help="output folder")
    p.add_argument("--names", default=",".join(NAMES), help="certificate names (host names), comma-separated")
    p.add_argument("--days", type=int, default=365, help="validity in days (1..3650)")
    p.set_defaults(func=run)
