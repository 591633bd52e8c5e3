"""Where the real public eMRTD data lives (see fixtures/real_emrtd/README.md).

Small files: ``fixtures/real_emrtd/`` (copies, with provenance). Large files (master
lists, the PEM bundle): ``shared/real-emrtd/`` beside the project or one of its parent
folders (CI copies ``shared/`` beside the clone). A missing folder fails the test: real
data is never skipped silently."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures" / "real_emrtd"
BSI = FIXTURES / "bsi_tr03105_5"
#: "now" for the real-data checks: inside the validity of the 2026 master lists
NOW = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)


def shared() -> Path:
    for folder in ROOT.parents:
        candidate = folder / "shared" / "real-emrtd"
        if candidate.is_dir():
            return candidate
    raise AssertionError("shared/real-emrtd not found beside the project or a parent folder: the real-data "
                         "tests need it (CI copies shared/ beside the clone)")


def bsi_files(*numbers: int) -> dict[str, bytes]:
    """The BSI TR-03105-5 reference document's EF.SOD and the data groups asked for."""
    files = {"SOD": (BSI / "EF_SOD.bin").read_bytes()}
    for number in numbers:
        files[f"DG{number}"] = (BSI / f"Datagroup{number}.bin").read_bytes()
    return files


def make_ca_pair(country: str, label: str) -> tuple[bytes, object, bytes, object]:
    """A TEST CSCA of ``country`` and a DSC under it (EC P-256, deterministic keys):
    (CSCA DER, CSCA key, DSC DER, DSC key). Stands in for a foreign country's real
    CSCA, whose private key we do not have."""
    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    from agent.sim.signing import derive_ec_key

    def name(cn: str) -> cx509.Name:
        return cx509.Name([cx509.NameAttribute(NameOID.COUNTRY_NAME, country),
                           cx509.NameAttribute(NameOID.ORGANIZATION_NAME, "idagent TEST PKI - not a real authority"),
                           cx509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def cert(subject: cx509.Name, issuer: cx509.Name, public: object, key: object, serial: int, ca: bool) -> bytes:
        usage = cx509.KeyUsage(digital_signature=not ca, content_commitment=False, key_encipherment=False,
                               data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                               encipher_only=False, decipher_only=False)
        built = (cx509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public)
                 .serial_number(serial).not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
                 .not_valid_after(dt.datetime(2035, 1, 1, tzinfo=dt.UTC))
                 .add_extension(cx509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
                 .add_extension(usage, critical=True)
                 .sign(key, hashes.SHA256()))  # type: ignore[arg-type]
        return built.public_bytes(Encoding.DER)

    csca_key = derive_ec_key(f"csca {country} {label}".encode(), "secp256r1")
    dsc_key = derive_ec_key(f"dsc {country} {label}".encode(), "secp256r1")
    csca_name, dsc_name = name(f"TEST CSCA {country} {label}"), name(f"TEST DS {country} {label}")
    csca = cert(csca_name, csca_name, csca_key.public_key(), csca_key, 1, True)
    dsc = cert(dsc_name, csca_name, dsc_key.public_key(), csca_key, 2, False)
    return csca, csca_key, dsc, dsc_key
