"""The trust store: the CSCA certificates (trust anchors, including link certificates)
and CRLs that passive authentication checks document signers against (9303-12 §5, §7).

On disk it is one folder (``config/csca/`` by default) of certificate files (PEM or DER,
any name ending .pem .crt .cer .der) and CRL files (.crl, PEM or DER). Loading is the
only I/O here; ``TrustStore.from_certificates`` builds one in memory for tests.
Every certificate in the store is trusted: the operator put it there (usually by
importing a master list whose signature was checked, see ``agent.icao.masterlist``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from asn1crypto import crl as asn1_crl
from asn1crypto import x509

from agent.errors import IdAgentError, ParseError
from agent.icao import certs
from agent.icao.asn1 import ASN1_ERRORS

logger = logging.getLogger(__name__)

CERT_SUFFIXES = (".pem", ".crt", ".cer", ".der")
CRL_SUFFIXES = (".crl",)


class TrustStoreError(IdAgentError):
    code = "trust_store"
    exit_code = 3
    hint = ("Check the trust folder (--trust DIR or [trust] csca_dir in the config): "
            "it must exist and hold CSCA certificates.")


@dataclass(frozen=True)
class Anchor:
    """One trusted CSCA certificate (self-signed root or link certificate)."""

    cert: x509.Certificate = field(repr=False)
    source: str = ""

    @cached_property
    def fingerprint(self) -> str:
        return certs.fingerprint(self.cert)

    @property
    def subject(self) -> str:
        return certs.subject_text(self.cert)

    @property
    def country(self) -> str:
        return certs.country(self.cert.subject)

    @cached_property
    def is_link(self) -> bool:
        """A CSCA link certificate (9303-12 §5.5.2): a new CSCA key signed by the old
        one. It often has the same name as the root, so the signature decides (checked
        once per anchor: the chain builder asks on every read)."""
        return not certs.is_root(self.cert)

    @cached_property
    def name_key(self) -> str:
        """The subject in asn1crypto's normalized comparison form (RFC 5280 §7.1)."""
        return str(self.cert.subject.hashable)

    @cached_property
    def key_identifier(self) -> bytes | None:
        key_id: bytes | None = self.cert.key_identifier  # asn1crypto is untyped
        return key_id

    @property
    def common_name(self) -> str:
        return certs.common_name(self.cert)

    def summary(self) -> dict[str, str | bool]:
        start, end = certs.validity(self.cert)
        return {
            "subject": self.subject,
            "common_name": self.common_name,
            "country": self.country,
            "key": certs.key_description(self.cert),
            "valid_from": start.date().isoformat(),
            "valid_until": end.date().isoformat(),
            "link": self.is_link,
            "fingerprint": self.fingerprint,
            "source": self.source,
        }


def load_crl(data: bytes, source: str = "CRL") -> asn1_crl.CertificateList:
    blocks = certs.pem_blocks(data)
    if blocks:
        data = blocks[0][1]
    try:
        crl = asn1_crl.CertificateList.load(data, strict=True)
        crl.native  # noqa: B018 - parse it all now
    except ASN1_ERRORS as exc:
        raise ParseError(f"not a CRL: {exc}", source=source) from exc
    return crl


class TrustStore:
    """CSCA anchors and CRLs, looked up by issuer name."""

    def __init__(self, anchors: Iterable[Anchor] = (), crls: Iterable[asn1_crl.CertificateList] = (),
                 problems: Iterable[str] = (), directory: Path | None = None) -> None:
        self.anchors: list[Anchor] = []
        self._seen: set[str] = set()
        # anchors by normalized subject name: a linear scan comparing names took most
        # of passive authentication's time with a real master list (~600 anchors)
        self._by_subject: dict[str, list[Anchor]] = {}
        for anchor in anchors:
            self.add(anchor)
        self.crls: list[asn1_crl.CertificateList] = list(crls)
        #: files that could not be loaded (shown by ``trust list`` and the doctor)
        self.problems: list[str] = list(problems)
        self.directory = directory

    @classmethod
    def from_certificates(cls, certificates: Iterable[x509.Certificate | bytes],
                          crls: Iterable[asn1_crl.CertificateList | bytes] = ()) -> TrustStore:
        anchors = [Anchor(c if isinstance(c, x509.Certificate) else certs.load_certificate(c), "memory")
                   for c in certificates]
        lists = [c if isinstance(c, asn1_crl.CertificateList) else load_crl(c) for c in crls]
        return cls(anchors, lists)

    @classmethod
    def load(cls, directory: str | Path) -> TrustStore:
        """Load every certificate and CRL file in ``directory`` (not recursive).
        A missing folder is a ``TrustStoreError``; an unreadable file is listed in
        ``problems`` and skipped, so one bad file does not disable verification."""
        path = Path(directory)
        if not path.is_dir():
            raise TrustStoreError(f"trust folder {path} does not exist")
        anchors: list[Anchor] = []
        crls: list[asn1_crl.CertificateList] = []
        problems: list[str] = []
        for file in sorted(path.iterdir()):
            suffix = file.suffix.lower()
            if suffix not in CERT_SUFFIXES + CRL_SUFFIXES or not file.is_file():
                continue
            try:
                data = file.read_bytes()
                if suffix in CRL_SUFFIXES:
                    crls.append(load_crl(data, file.name))
                else:
                    anchors.append(Anchor(certs.load_certificate(data, file.name), file.name))
            except (ParseError, OSError) as exc:
                logger.warning("trust store: skipping %s: %s", file.name, exc)
                problems.append(f"{file.name}: {exc}")
        logger.info("trust store %s: %d CSCA certificate(s), %d CRL(s)", path, len(anchors), len(crls))
        return cls(anchors, crls, problems, path)

    def add(self, anchor: Anchor) -> bool:
        """Add unless the same certificate is already there; returns whether it was new."""
        fp = anchor.fingerprint
        if fp in self._seen:
            return False
        self._seen.add(fp)
        self.anchors.append(anchor)
        self._by_subject.setdefault(anchor.name_key, []).append(anchor)
        return True

    def __len__(self) -> int:
        return len(self.anchors)

    def issuers_of(self, cert: x509.Certificate) -> list[Anchor]:
        """Anchors whose subject is ``cert``'s issuer (signature not checked here).
        Several may match: a CSCA's renewed root and its link certificate share the name."""
        candidates = self._by_subject.get(str(cert.issuer.hashable), [])
        return sorted(candidates, key=lambda anchor: _preference(anchor, cert))

    def crls_for(self, issuer_name: x509.Name) -> list[asn1_crl.CertificateList]:
        return [c for c in self.crls if c["tbs_cert_list"]["issuer"] == issuer_name]

    def summaries(self) -> list[dict[str, str | bool]]:
        return [a.summary() for a in sorted(self.anchors, key=lambda a: (a.country, a.subject, a.fingerprint))]


def _preference(anchor: Anchor, cert: x509.Certificate) -> tuple[bool, bool, float, str]:
    """The order in which same-named anchors are tried, independent of file names:
    the one whose key identifier is the certificate's authority key identifier first,
    then roots before link certificates (a renewed root proves the same key as its
    link certificate without dragging in the old, maybe expired, root: 9303-12
    §5.5.2), then the newest, then by fingerprint."""
    authority = cert.authority_key_identifier
    kid_mismatch = not (authority is not None and anchor.key_identifier == authority)
    return (kid_mismatch, anchor.is_link, -anchor.cert.not_valid_after.timestamp(), anchor.fingerprint)


def crl_summary(crl: asn1_crl.CertificateList) -> dict[str, str | int]:
    tbs = crl["tbs_cert_list"]
    next_update = tbs["next_update"].native
    return {
        "issuer": certs.short_name(tbs["issuer"]),
        "this_update": tbs["this_update"].native.date().isoformat(),
        "next_update": next_update.date().isoformat() if isinstance(next_update, dt.datetime) else "",
        "revoked": len(tbs["revoked_certificates"]) if tbs["revoked_certificates"].native else 0,
    }


# -- importing into a store folder -----------------------------------------------------------

@dataclass(frozen=True)
class ImportReport:
    kind: str                       # "master list", "certificate bundle", "certificate" or "CRL"
    added: tuple[str, ...]          # file names written
    already_present: int
    signer: str = ""                # master lists: who signed it
    skipped: tuple[str, ...] = ()   # members not imported, with the reason
    total: int = 1                  # members in the file (certificates of a list or bundle)

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "added": list(self.added), "already_present": self.already_present,
                "signer": self.signer, "skipped": list(self.skipped), "total": self.total}


def _write_once(directory: Path, name: str, data: bytes) -> bool:
    target = directory / name
    if target.exists():
        return False
    tmp = directory / f".{name}.tmp"
    tmp.write_bytes(data)
    tmp.replace(target)
    return True


def cert_file_name(cert: x509.Certificate) -> str:
    return f"{certs.country(cert.subject) or 'XX'}_{certs.fingerprint(cert)[:16]}.der"


def anchor_problem(cert: x509.Certificate) -> str | None:
    """Why ``cert`` must not become a trust anchor, or None. A CSCA is a CA
    (basicConstraints cA, 9303-12 §7.1.1 table); a self-issued one must verify with its
    own key, unless it is a link certificate (signed by the old key, checked at use)."""
    if not certs.is_ca(cert):
        return "not a CA certificate (basicConstraints cA not set): refused as a trust anchor"
    try:
        certs.cert_public_key(cert)
    except certs.SignatureError as exc:
        return f"its key cannot be used: {exc}"
    return None


def _store_members(members: Iterable[tuple[str, x509.Certificate | str]], folder: Path,
                   ) -> tuple[list[str], int, list[str]]:
    """Write each good member; (written, already present, refused with reasons)."""
    written: list[str] = []
    present = 0
    refused: list[str] = []
    for label, member in members:
        if isinstance(member, str):
            refused.append(f"{label}: {member}")
            continue
        problem = anchor_problem(member)
        if problem is not None:
            refused.append(f"{label} ({certs.short_subject(member)}): {problem}")
            continue
        if _write_once(folder, cert_file_name(member), member.dump()):
            written.append(cert_file_name(member))
        else:
            present += 1
    return written, present, refused


def _bundle_members(blocks: list[bytes]) -> list[tuple[str, x509.Certificate | str]]:
    out: list[tuple[str, x509.Certificate | str]] = []
    for number, der in enumerate(blocks, 1):
        label = f"certificate {number} of {len(blocks)}"
        try:
            out.append((label, certs.load_certificate(der, label)))
        except ParseError as exc:
            out.append((label, exc.message.removeprefix(f"{label}: ")))
    return out


def import_file(path: str | Path, directory: str | Path) -> ImportReport:
    """Import CSCA certificates (one, or a PEM file holding many), a CRL or a CSCA
    master list into ``directory``.

    Every certificate is checked on its own (``anchor_problem``): good ones are written,
    the others listed in ``skipped`` with the reason. A master list is imported only if
    its signature and signer chain verify (``agent.icao.masterlist``); otherwise
    ``MasterListError`` and nothing is written. Certificates are stored as DER named
    ``<country>_<fingerprint>.der``."""
    source = Path(path)
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise TrustStoreError(f"cannot read {source}: {exc.strerror}", hint="Check the file name.") from exc
    folder = Path(directory)
    blocks = [der for label, der in certs.pem_blocks(data) if label.endswith("CERTIFICATE")]
    if len(blocks) > 1:
        folder.mkdir(parents=True, exist_ok=True)
        written, present, refused = _store_members(_bundle_members(blocks), folder)
        logger.info("certificate bundle imported: %d new, %d already present, %d refused",
                    len(written), present, len(refused))
        return ImportReport("certificate bundle", tuple(written), present, "", tuple(refused), len(blocks))
    try:
        cert = certs.load_certificate(data, source.name)
    except ParseError as exc:
        if len(blocks) == 1 or certs.looks_like_certificate(data):
            raise TrustStoreError(f"{source.name} is a certificate that cannot be used: {exc.message}",
                                  hint="Get a well-formed copy of this CSCA certificate from its publisher.") from exc
        cert = None
    if cert is not None:
        problem = anchor_problem(cert)
        if problem is not None:
            raise TrustStoreError(f"{source.name} is not a CSCA certificate usable as a trust anchor: {problem}",
                                  hint="Import CSCA certificates or a CSCA master list, not document signers.")
        folder.mkdir(parents=True, exist_ok=True)
        added = _write_once(folder, cert_file_name(cert), cert.dump())
        return ImportReport("certificate", (cert_file_name(cert),) if added else (), 0 if added else 1)
    try:
        crl = load_crl(data, source.name)
    except ParseError:
        crl = None
    if crl is not None:
        country = certs.country(crl["tbs_cert_list"]["issuer"]) or "XX"
        name = f"{country}_{certs.hash_bytes('sha256', crl.dump()).hex()[:16]}.crl"
        folder.mkdir(parents=True, exist_ok=True)
        added = _write_once(folder, name, crl.dump())
        return ImportReport("CRL", (name,) if added else (), 0 if added else 1)
    return _import_master_list(data, source, folder)


def _import_master_list(data: bytes, source: Path, folder: Path) -> ImportReport:
    from agent.icao import masterlist

    try:
        listing = masterlist.read_master_list(data)
    except ParseError as exc:
        raise TrustStoreError(f"{source.name} is not a certificate, a CRL or a CSCA master list ({exc.message})",
                              hint="Give a CSCA certificate (PEM/DER), a CRL or an ICAO master list (.ml).") from exc
    folder.mkdir(parents=True, exist_ok=True)
    total = len(listing.certificates) + len(listing.refused)
    members = [("member", c) for c in listing.certificates]
    written, present, refused = _store_members(members, folder)
    refused = list(listing.refused) + refused
    logger.info("master list imported: %d new CSCA certificate(s), %d already present, %d refused",
                len(written), present, len(refused))
    return ImportReport("master list", tuple(written), present, listing.signer_subject, tuple(refused), total)
