"""Passive authentication (9303-11 §5.1, 9303-12 §7): are the data groups read the
ones the issuer signed, and is the signer trusted?

1. every data group read hashes to the value in EF.SOD's LDSSecurityObject;
2. the SignerInfo's signed attributes hold the right content type and the hash of the
   LDSSecurityObject, and the Document Signer (DSC) key signed them;
3. the DSC chains to a CSCA of the trust store (directly, or through a CSCA link
   certificate), every certificate valid at signing time, the issuer a CA allowed to
   sign certificates, the DSC not on the CSCA's CRL.

The result never raises on a forged card: it says which check failed and why.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from asn1crypto import cms, x509
from asn1crypto import crl as asn1_crl

from agent.errors import ParseError
from agent.icao import certs
from agent.icao.certs import SignatureError
from agent.icao.checks import CheckResult, Status
from agent.icao.cms import check_signed_data, find_signer_cert, same_signer_reordered, signing_time_of
from agent.icao.sod import Sod, parse_sod
from agent.icao.trust import TrustStore

logger = logging.getLogger(__name__)

#: a chain longer than this (DSC, link certificates …, root) is refused
MAX_CHAIN = 5
_DG_KEY = re.compile(r"^(?:EF\.)?DG(\d{1,2})$", re.I)
_SOD_KEYS = ("SOD", "EF.SOD")


def dg_number(key: str | int) -> int | None:
    """``"DG2"``, ``"EF.DG2"``, ``"dg2"`` or ``2`` → 2; anything else → None."""
    if isinstance(key, int):
        return key if 1 <= key <= 16 else None
    match = _DG_KEY.match(key)
    if not match:
        return None
    number = int(match.group(1))
    return number if 1 <= number <= 16 else None


def split_files(files: Mapping[str, bytes] | Mapping[int, bytes]) -> tuple[bytes | None, dict[int, bytes]]:
    """(EF.SOD bytes or None, {DG number: bytes}) from a read's file map."""
    sod = None
    groups: dict[int, bytes] = {}
    for key, value in files.items():
        if isinstance(key, str) and key.upper() in _SOD_KEYS:
            sod = value
            continue
        number = dg_number(key)
        if number is not None:
            groups[number] = value
    return sod, groups


@dataclass(frozen=True)
class PassiveResult:
    """The check result plus what later checks need: the parsed SOD and which data
    groups are proven (CA and AA keys only count if DG14/DG15 are)."""

    check: CheckResult
    sod: Sod | None = None
    verified_dgs: frozenset[int] = field(default_factory=frozenset)


class _Failure(Exception):
    def __init__(self, status: Status, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def passive_authentication(files: Mapping[str, bytes] | Mapping[int, bytes], store: TrustStore, *,
                           now: dt.datetime | None = None, check_crl: bool = True,
                           sod: Sod | None = None) -> PassiveResult:
    """Run passive authentication over a read's files (keys ``"SOD"`` and ``"DG1"`` …
    ``"DG16"``, or ints for data groups). ``now`` defaults to the current UTC time.
    ``sod``: ``files["SOD"]`` already parsed by the caller (parsed here otherwise)."""
    now = certs.aware(now or dt.datetime.now(dt.UTC))
    raw_sod, groups = split_files(files)
    if raw_sod is None:
        return PassiveResult(CheckResult.not_checked("EF.SOD was not read: the data cannot be verified"))
    try:
        sod = sod if sod is not None else parse_sod(raw_sod)
    except ParseError as exc:
        return PassiveResult(CheckResult(Status.ERROR, f"EF.SOD is malformed ({exc.message}); the data is unverified"))
    if sod.hash_algorithm not in certs.HASHES:
        return PassiveResult(CheckResult(Status.ERROR, f"EF.SOD hashes with {sod.hash_algorithm}, which is not one "
                                                       "of SHA-1/224/256/384/512 (9303-12 §4.3)"), sod)
    mismatched, unlisted, matched = _compare_hashes(sod, groups)
    if mismatched or unlisted:
        reason = "; ".join(
            [f"DG{n} does not match its hash in EF.SOD (altered after signing)" for n in mismatched]
            + [f"DG{n} was read but EF.SOD lists no hash for it" for n in unlisted])
        return PassiveResult(CheckResult(Status.INVALID, reason, details={"mismatched_dgs": mismatched}), sod)
    notes: list[str] = []
    details: dict[str, object] = {"hash_algorithm": sod.hash_algorithm, "data_groups": matched}
    try:
        chain = _signer_chain(sod, store, now, check_crl, notes, details)
    except _Failure as failure:
        return PassiveResult(CheckResult(failure.status, failure.reason, tuple(notes), details), sod)
    not_read = sorted(set(sod.dg_hashes) - set(groups))
    if not_read:
        notes.append("not read, so not checked: " + ", ".join(f"DG{n}" for n in not_read))
    chain_names = [certs.short_subject(c) for c in chain]
    compared = (f"{len(matched)} data group(s) match EF.SOD" if matched
                else "EF.SOD's signature and chain hold; no data group was compared")
    reason = f"{compared}; signed by {chain_names[0]}, chained to trusted CSCA {chain_names[-1]}"
    return PassiveResult(CheckResult(Status.VALID, reason, tuple(notes), details), sod, frozenset(matched))


class SignedObject(Protocol):
    """What the signature and chain checks need of a CMS SignedData (EF.SOD,
    EF.CardSecurity)."""

    @property
    def signer_info(self) -> cms.SignerInfo: ...
    @property
    def content_type(self) -> str: ...
    @property
    def econtent(self) -> bytes: ...
    @property
    def certificates(self) -> tuple[x509.Certificate, ...]: ...


def _signer_chain(signed: SignedObject, store: TrustStore, now: dt.datetime, check_crl: bool,
                  notes: list[str], details: dict[str, object], name: str = "EF.SOD") -> list[x509.Certificate]:
    """The signature of ``signed`` and its signer's chain to a trust anchor (9303-12
    §7.1): returns the chain, or raises ``_Failure`` naming what failed."""
    dsc = _check_signature(signed, notes, name)
    details["document_signer"] = certs.subject_text(dsc)
    signing_time = signing_time_of(signed.signer_info)
    if signing_time is not None:
        details["signing_time"] = signing_time.isoformat()
    chain = _build_chain(dsc, store, signed.certificates)
    details["chain"] = [certs.subject_text(c) for c in chain]
    # the countries the issuer check compares with DG1 (agent.icao.issuer)
    details["signer_country"] = certs.country(dsc.subject)
    details["csca_country"] = certs.country(chain[-1].subject)
    _check_chain(chain, signing_time, now, notes)
    if check_crl:
        _check_revocation(chain, store, now, notes)
    else:
        notes.append("CRLs not checked (disabled in the config)")
    return chain


def check_signed_object(signed: SignedObject, store: TrustStore, *, name: str, now: dt.datetime | None = None,
                        check_crl: bool = True) -> CheckResult:
    """Signature and signer chain of a signed object other than EF.SOD (e.g.
    EF.CardSecurity), with the same rules as passive authentication."""
    now = certs.aware(now or dt.datetime.now(dt.UTC))
    notes: list[str] = []
    details: dict[str, object] = {}
    try:
        chain = _signer_chain(signed, store, now, check_crl, notes, details, name)
    except _Failure as failure:
        return CheckResult(failure.status, failure.reason, tuple(notes), details)
    names = [certs.short_subject(c) for c in chain]
    return CheckResult(Status.VALID, f"{name} signed by {names[0]}, chained to trusted CSCA {names[-1]}",
                       tuple(notes), details)


def _compare_hashes(sod: Sod, groups: Mapping[int, bytes]) -> tuple[list[int], list[int], list[int]]:
    mismatched: list[int] = []
    unlisted: list[int] = []
    matched: list[int] = []
    for number in sorted(groups):
        expected = sod.dg_hashes.get(number)
        if expected is None:
            unlisted.append(number)
            continue
        actual = certs.hash_bytes(sod.hash_algorithm, groups[number])
        (matched if hmac.compare_digest(actual, expected) else mismatched).append(number)
    return mismatched, unlisted, matched


# -- the SOD signature ---------------------------------------------------------------

def _check_signature(sod: SignedObject, notes: list[str], name: str = "EF.SOD") -> x509.Certificate:
    dsc = find_signer_cert(sod.signer_info, sod.certificates)
    if dsc is None:
        dsc = _sole_certificate_fallback(sod, notes, name)
    try:
        check_signed_data(sod.signer_info, sod.content_type, sod.econtent, dsc)
    except SignatureError as exc:
        raise _Failure(Status.INVALID, f"{name} signature by {certs.short_subject(dsc)} is not valid: {exc}") from exc
    return dsc


def _sole_certificate_fallback(sod: SignedObject, notes: list[str], name: str) -> x509.Certificate:
    """Some genuine SODs name their signer with the issuer's RDNs in another order than
    the certificate carries them (seen on Malaysian passports). Then the single
    certificate in the SOD stands in, when it has the serial number and the same name
    parts as the SignerInfo says; the caller still checks the signature with it, which
    is what proves it is the signer. Anything else that does not match stays an error."""
    only = sod.certificates[0] if len(sod.certificates) == 1 else None
    if only is None or not same_signer_reordered(sod.signer_info, only):
        raise _Failure(Status.ERROR, f"{name} carries no Document Signer certificate matching its SignerInfo "
                                     f"({len(sod.certificates)} certificate(s) in {name})")
    try:
        check_signed_data(sod.signer_info, sod.content_type, sod.econtent, only)
    except SignatureError as exc:
        raise _Failure(Status.INVALID, f"{name} signature by {certs.short_subject(only)} is not valid: "
                                       f"{exc}") from exc
    notes.append(f"{name}'s SignerInfo names the Document Signer's issuer with its name parts in another order "
                 "than the certificate; the only certificate in it has that serial number and verifies the "
                 "signature, so it was used")
    return only


# -- the certificate chain -----------------------------------------------------------

def _build_chain(dsc: x509.Certificate, store: TrustStore,
                 extra: tuple[x509.Certificate, ...]) -> list[x509.Certificate]:
    """DSC → … → a certificate of the trust store, each signature checked. ``extra``
    (certificates carried in the SOD, e.g. a link certificate) may serve as
    intermediates but never as anchors."""
    chain = [dsc]
    tried_names = 0
    current = dsc
    while len(chain) <= MAX_CHAIN:
        anchors = store.issuers_of(current)
        tried_names += len(anchors)
        for anchor in anchors:
            if _signed_by(current, anchor.cert):
                chain.append(anchor.cert)
                if anchor.is_link:
                    _extend_link_to_root(chain, store)
                return chain
        issuer_key = current.issuer.hashable
        step = next((c for c in extra if all(c is not link for link in chain)
                     and c.subject.hashable == issuer_key and _signed_by(current, c)), None)
        if step is None:
            break
        chain.append(step)
        current = step
    issuer = certs.short_name(current.issuer)
    if tried_names:
        raise _Failure(Status.UNTRUSTED,
                       f"no CSCA in the trust store verifies the signature on {certs.short_subject(current)} "
                       f"({tried_names} certificate(s) named {issuer} tried): import that CSCA")
    raise _Failure(Status.UNTRUSTED, f"trust anchor missing: no CSCA '{issuer}' in the trust store")


def _extend_link_to_root(chain: list[x509.Certificate], store: TrustStore) -> None:
    """A trusted link certificate is an anchor by itself; when the old root it hangs
    from is in the store too, add it so that its validity is checked as well
    (9303-12 §5.5.2). Only reached when the store holds no renewed root for the
    link's key (``TrustStore.issuers_of`` tries roots first)."""
    link = chain[-1]
    for anchor in store.issuers_of(link):
        if anchor.cert is not link and not anchor.is_link and _signed_by(link, anchor.cert):
            chain.append(anchor.cert)
            return


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certs.verify_issued_by(cert, issuer)
    except SignatureError as exc:
        logger.debug("candidate issuer rejected: %s", exc)
        return False
    return True


def _check_chain(chain: list[x509.Certificate], signing_time: dt.datetime | None,
                 now: dt.datetime, notes: list[str]) -> None:
    dsc = chain[0]
    usage = certs.key_usage(dsc)
    if usage is not None and "digital_signature" not in usage:
        raise _Failure(Status.INVALID, f"DSC {certs.short_subject(dsc)} is not allowed to sign (key usage)")
    for issuer in chain[1:]:
        name = certs.short_subject(issuer)
        issuer_usage = certs.key_usage(issuer)
        if not certs.is_ca(issuer) or (issuer_usage is not None and "key_cert_sign" not in issuer_usage):
            raise _Failure(Status.INVALID, f"CSCA {name} is not a CA allowed to sign certificates")
    # 9303-12 §7.1.2: the DSC (and its issuers) must be valid when the SOD was signed.
    # Without a signingTime attribute the DSC's own validity period stands in for it.
    at = signing_time
    for cert in chain:
        name = certs.short_subject(cert)
        start, end = certs.validity(cert)
        if at is not None and not certs.is_valid_at(cert, at):
            raise _Failure(Status.INVALID, f"certificate {name} (valid {start.date()} to {end.date()}) "
                                           f"was not valid when EF.SOD was signed ({at.date()})")
        if now < start:
            raise _Failure(Status.INVALID, f"certificate {name} is not valid before {start.date()}")
        if now > end:
            when = f"valid when EF.SOD was signed on {at.date()}" if at else "signing time unknown"
            notes.append(f"certificate {name} expired on {end.date()} ({when})")
    issued = dsc.not_valid_before
    for issuer in chain[1:]:
        if not certs.is_valid_at(issuer, issued):
            raise _Failure(Status.INVALID, f"CSCA {certs.short_subject(issuer)} was not valid when it issued "
                                           f"{certs.short_subject(dsc)} ({issued.date()})")


def _crl_signed_by(crl: asn1_crl.CertificateList, signer: x509.Certificate) -> bool:
    try:
        certs.verify_signature(certs.cert_public_key(signer), crl["signature_algorithm"],
                               bytes(crl["signature"].native), crl["tbs_cert_list"].dump())
    except SignatureError:
        return False
    return True


def _check_revocation(chain: list[x509.Certificate], store: TrustStore, now: dt.datetime,
                      notes: list[str]) -> None:
    """9303-12 §7.1.4: a DSC (or link certificate) on its CSCA's CRL is revoked."""
    for cert, issuer in zip(chain, chain[1:], strict=False):
        lists = store.crls_for(cert.issuer)
        if not lists:
            continue
        # the CRL may be signed by any key of this CSCA (old or new, around a rollover)
        signers = [issuer] + [a.cert for a in store.issuers_of(cert) if a.cert is not issuer]
        for crl in lists:
            if not any(_crl_signed_by(crl, signer) for signer in signers):
                notes.append(f"a CRL named {certs.short_subject(issuer)} was ignored: its signature does not verify")
                continue
            tbs = crl["tbs_cert_list"]
            next_update = tbs["next_update"].native
            if isinstance(next_update, dt.datetime) and next_update < now:
                notes.append(f"the CRL of {certs.short_subject(issuer)} is out of date (next update was "
                             f"{next_update.date()})")
            for entry in tbs["revoked_certificates"] or []:
                if entry["user_certificate"].native == cert.serial_number:
                    when = entry["revocation_date"].native
                    raise _Failure(Status.INVALID, f"certificate {certs.short_subject(cert)} (serial "
                                                   f"{cert.serial_number:X}) was revoked on {when.date()} "
                                                   f"by {certs.short_subject(issuer)}")
