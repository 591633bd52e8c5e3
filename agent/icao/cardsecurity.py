"""EF.CardSecurity and the key that checks PACE-CAM (BSI TR-03110-3 A.1.1.2, A.1.2;
9303-11 §4.4.3.5).

With PACE-CAM the chip proves a static key during PACE. That key is published, signed by
the Document Signer, in EF.CardSecurity (MF, FID 011D, SFI 1D, readable after PACE):
a CMS SignedData whose eContent (id-SecurityObject) is a SET OF SecurityInfo, among them
ChipAuthenticationPublicKeyInfos. The CAM key is the one whose keyId equals the PACE
domain parameter id. It need not be DG14's Chip Authentication key: checking the CAM
answer against DG14 called genuine German passports clones.

``cam_check(raw, parameter_id, ca_ic, mapping_key, store, …)`` returns the chip-check
result: the signature and chain of EF.CardSecurity (the same rules as passive
authentication), then CA_IC · PK_IC = PK_map,IC with the published key.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from asn1crypto import cms, x509

from agent.errors import ParseError
from agent.icao import ca, securityinfo
from agent.icao.asn1 import ASN1_ERRORS
from agent.icao.certs import SignatureError
from agent.icao.checks import CheckResult, Status
from agent.icao.cms import certificates_of, open_signed
from agent.icao.pa import check_signed_object
from agent.icao.securityinfo import ChipAuthenticationPublicKeyInfo, SecurityInfos
from agent.icao.trust import TrustStore

#: BSI TR-03110-3 A.1.2.5: id-SecurityObject (bsi-de 3 2 1), eContentType of EF.CardSecurity
OID_SECURITY_OBJECT = "0.4.0.127.0.7.3.2.1"
NAME = "EF.CardSecurity"


@dataclass(frozen=True)
class CardSecurity:
    signer_info: cms.SignerInfo = field(repr=False)
    content_type: str
    econtent: bytes = field(repr=False)
    certificates: tuple[x509.Certificate, ...] = field(repr=False)
    infos: SecurityInfos

    def cam_key(self, parameter_id: int) -> ChipAuthenticationPublicKeyInfo | None:
        """The ChipAuthenticationPublicKeyInfo whose keyId is the PACE parameter id;
        the only one when there is one without a keyId."""
        found = [k for k in self.infos.chip_authentication_keys if k.key_id == parameter_id]
        if found:
            return found[0]
        keys = self.infos.chip_authentication_keys
        return keys[0] if len(keys) == 1 and keys[0].key_id is None else None


def parse_card_security(raw: bytes) -> CardSecurity:
    """Parse EF.CardSecurity (a ContentInfo, no outer tag). Raises ``ParseError``."""
    signed, signer, content_type, econtent = open_signed(raw, NAME, (OID_SECURITY_OBJECT,), "id-SecurityObject")
    try:
        certificates = certificates_of(signed)
        for cert in certificates:
            cert.native  # noqa: B018 - a corrupt certificate is a parse error here, not later
    except ASN1_ERRORS as exc:
        raise ParseError(f"malformed certificate: {exc}", source=NAME) from exc
    infos = securityinfo.parse_security_infos(econtent, source=NAME)
    return CardSecurity(signer, content_type, econtent, certificates, infos)


def cam_check(raw: bytes | None, parameter_id: int | None, ca_ic: bytes | None, mapping_key: bytes | None,
              store: TrustStore, *, now: dt.datetime | None = None, check_crl: bool = True) -> CheckResult:
    """The chip check of a PACE-CAM read (see the module docstring)."""
    if raw is None:
        return CheckResult.not_checked(f"{NAME}, which publishes the PACE-CAM key, was not read: "
                                       "the chip's PACE-CAM answer could not be checked")
    try:
        card_security = parse_card_security(raw)
    except ParseError as exc:
        return CheckResult(Status.ERROR, f"{NAME} is malformed ({exc.message}): PACE-CAM not checked")
    signed = check_signed_object(card_security, store, name=NAME, now=now, check_crl=check_crl)
    if not signed.ok:
        status = Status.INVALID if signed.status is Status.INVALID else signed.status
        return CheckResult(status, f"the PACE-CAM key is not proven: {signed.reason}", signed.notes, signed.details)
    key = card_security.cam_key(parameter_id) if parameter_id is not None else None
    if key is None:
        return CheckResult(Status.ERROR, f"{NAME} publishes no Chip Authentication key with key id "
                                         f"{parameter_id} (the PACE parameter id)", signed.notes)
    try:
        group, chip_public = ca.group_of_der(key.public_key_info)
    except (SignatureError, *ASN1_ERRORS) as exc:
        return CheckResult(Status.ERROR, f"the PACE-CAM key in {NAME} is malformed: {exc}", signed.notes)
    result = ca.check_cam(ca_ic, mapping_key, group, chip_public, f"the key {NAME} publishes")
    return CheckResult(result.status, result.reason, signed.notes,
                       {**result.details, "card_security_signer": signed.details.get("document_signer", "")})
