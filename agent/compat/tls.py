"""A self-signed certificate for the reader-kit service's https (the kits serve https
with one of their own; desk software that connects to ``https://127.0.0.1:8000`` has
been told to trust it, or the hospital installs this one in the desk's browser).

``python -m agent.compat.tls DIR [HOST ...]`` writes ``DIR/compat.crt`` and
``DIR/compat.key`` (the key owner-only, 0600) for 127.0.0.1, localhost and the HOSTs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

#: a desk certificate is replaced with the desk PC, not yearly
VALID_DAYS = 825


def _names(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in ["127.0.0.1", "localhost", *hosts]:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def make_self_signed(directory: str | os.PathLike[str], hosts: list[str] | None = None) -> tuple[Path, Path]:
    """Write ``compat.crt`` and ``compat.key`` (0600) in ``directory``; return their paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idagent reader-kit service")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(_names(hosts or [])), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = out / "compat.crt", out / "compat.key"
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m agent.compat.tls DIR [HOST ...]", file=sys.stderr)
        return 2
    cert, key = make_self_signed(args[0], args[1:])
    print(f"[compat] tls_cert = \"{cert}\"\n[compat] tls_key = \"{key}\"")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
