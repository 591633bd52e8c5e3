"""Chip Authentication (9303-11 §6.2; DG14 per 9303-10 §4.7.14): an ephemeral key
agreement with the chip's static key of DG14, then secure messaging restarted with
keys derived from the shared secret. Only a chip holding DG14's private key can
answer under the new keys: a chip whose data verify but which fails this is a copy.

Terminal side:

* ECDH or DH, over the domain parameters of the DG14 key (named or explicit curves,
  X9.42 DH groups), with ``agent.icao.params`` groups for the arithmetic;
* 3DES: MSE:Set KAT (ephemeral key in DO91, key id in DO84) — 9303-11 §6.2;
* AES: MSE:Set AT (protocol OID in DO80, key id in DO84) then GENERAL AUTHENTICATE
  (ephemeral key in 7C/80) — 9303-11 §6.2;
* new KSenc/KSmac = KDF(K, 1/2) and SSC 0 (9303-11 §6.2, §9.8). CA is implicit: only
  a chip that derived the same keys can answer with a valid MAC, so the first
  MAC-verified response under the new keys confirms it. ``chip_authentication(...,
  confirm=True)`` sends one APDU for that (READ BINARY of DG14's first bytes by SFI);
  with ``confirm=False`` the caller reads its next file under the new keys and calls
  ``confirm_chip_authentication`` (no extra APDU when that read proved the keys) or
  ``failed_under_new_keys`` (the read failed: the chip does not hold the key).

Also ``verify_pace_cam``: PACE with Chip Authentication Mapping authenticates the chip
during PACE; the terminal checks CA_IC · PK_IC = PK_map,IC (9303-11 §4.4, Chip Authentication Mapping).
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

from asn1crypto import core, keys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec as cec

from agent.errors import IdAgentError, ParseError
from agent.icao import certs, crypto, params, securityinfo
from agent.icao import tlv as ber
from agent.icao.certs import SignatureError
from agent.icao.checks import CheckResult, Status
from agent.icao.crypto import Cipher
from agent.icao.params import DhGroup, EcGroup, Element
from agent.icao.securityinfo import ChipAuthenticationInfo, ChipAuthenticationPublicKeyInfo, SecurityInfos
from agent.icao.sm import SecureMessaging, SecureMessagingError
from agent.readers.apdu import SHORT_LE_MAX, SW, Channel, Command, Ins
from agent.rng import Rng

logger = logging.getLogger(__name__)


#: MSE P1/P2 (ISO/IEC 7816-4 §7.5.11; 9303-11 §6.2): set for computation, KAT / AT
MSE_SET_P1 = 0x41
MSE_KAT = 0xA6
MSE_AT = 0xA4
DO_EPHEMERAL_KEY = 0x91   # MSE:Set KAT
DO_KEY_ID = 0x84          # private key reference
DO_PROTOCOL = 0x80        # cryptographic mechanism reference (OID value bytes)
DO_DYNAMIC_AUTH = 0x7C
DO_GA_EPHEMERAL = 0x80    # inside 7C of GENERAL AUTHENTICATE for CA
#: the file re-read under the new keys to confirm them: DG14 itself (FID 010E, SFI 0E)
DG14_FID = 0x010E
DG14_SFI = 0x0E
CONFIRM_BYTES = 8
#: READ BINARY P1 b8: b5-b1 are a short file identifier (ISO/IEC 7816-4 §11.2.3)
P1_SFI = 0x80
#: answers meaning "no SFI addressing here" (select the file instead)
NO_SFI_SW = frozenset({SW.INCORRECT_P1P2, SW.FUNCTION_NOT_SUPPORTED, SW.INS_NOT_SUPPORTED,
                       SW.NO_PRECISE_DIAGNOSIS})


@dataclass(frozen=True)
class CaParameters:
    """What the terminal needs from DG14 for one CA key."""

    protocol: str
    agreement: str            # "ECDH" or "DH"
    cipher: Cipher
    key_id: int | None
    group: EcGroup | DhGroup
    chip_public: Element


#: BSI TR-03110-3 A.2.1.1: standardizedDomainParameters (bsi-de algorithms 2); the
#: AlgorithmIdentifier's parameters are then the INTEGER id of 9303-11 §9.5.1's table
OID_STANDARDIZED_DOMAIN_PARAMETERS = "0.4.0.127.0.7.1.2"


class _AnyAlgorithm(core.Sequence):
    _fields = [("algorithm", core.ObjectIdentifier), ("parameters", core.Any, {"optional": True})]


class _RawPublicKeyInfo(core.Sequence):
    _fields = [("algorithm", _AnyAlgorithm), ("public_key", core.OctetBitString)]


def group_of_der(spki_der: bytes) -> tuple[EcGroup | DhGroup, Element]:
    """The group and the chip's public element of a DER SubjectPublicKeyInfo of a CA or
    CAM key: named or explicit curves, X9.42 DH, or standardized domain parameters
    (an id instead of the parameters, as German documents publish them). Raises
    ``SignatureError`` / ``ValueError`` for unusable keys."""
    raw = _RawPublicKeyInfo.load(spki_der, strict=True)
    if raw["algorithm"]["algorithm"].dotted != OID_STANDARDIZED_DOMAIN_PARAMETERS:
        return group_of(keys.PublicKeyInfo.load(spki_der, strict=True))
    parameters = raw["algorithm"]["parameters"]
    if parameters.native is None:
        raise SignatureError("standardized domain parameters without their id")
    parameter_id = core.Integer.load(parameters.dump(), strict=True).native
    if parameter_id not in params.STANDARD:
        raise SignatureError(f"standardized domain parameters {parameter_id} are not in 9303-11's table")
    group = params.STANDARD[parameter_id]
    value = bytes(raw["public_key"].native)
    if isinstance(group, DhGroup):
        # TR-03110-3 A.4.1: a DH public key is the INTEGER y inside the BIT STRING
        y = core.Integer.load(value, strict=True).native
        return group, group.decode(int(y).to_bytes(group.size, "big"))
    return group, group.decode(value)


def group_of(spki: keys.PublicKeyInfo) -> tuple[EcGroup | DhGroup, Element]:
    """The key agreement group and the chip's public element of a DG14 key.
    Raises ``SignatureError`` / ``ValueError`` for unusable keys."""
    algorithm = spki["algorithm"]["algorithm"].native
    if algorithm == "ec":
        curve = certs.curve_by_name(certs.named_curve_name(spki))
        group: EcGroup | DhGroup = next(
            (g for g in params.STANDARD.values() if isinstance(g, EcGroup) and g.curve == curve),
            EcGroup(-1, curve))
        return group, group.decode(bytes(spki["public_key"].native))
    if algorithm == "dh":
        domain = spki["algorithm"]["parameters"]
        p, g, q = domain["p"].native, domain["g"].native, domain["q"].native
        if q is None:
            raise SignatureError("DH key without the subgroup order q")
        dh = next((x for x in params.STANDARD.values() if isinstance(x, DhGroup) and (x.p, x.g, x.q) == (p, g, q)),
                  DhGroup(-1, "DH", p, g, q))
        y = spki["public_key"].parsed.native
        return dh, dh.decode(int(y).to_bytes(dh.size, "big"))
    raise SignatureError(f"DG14 key algorithm {algorithm} is not ECDH or DH")


def select_parameters(infos: SecurityInfos) -> CaParameters | None:
    """The CA protocol and key to use; None when DG14 offers no CA at all.

    9303-11 §6.2: a ChipAuthenticationInfo names protocol and cipher; a chip with only a
    ChipAuthenticationPublicKeyInfo (CA version 1 era) implies 3DES."""
    key_infos = infos.chip_authentication_keys
    if not key_infos:
        return None
    known = [(i, p) for i in infos.chip_authentication if (p := securityinfo.ca_protocol(i.protocol))]
    info: ChipAuthenticationInfo | None
    if known:
        info, (agreement, cipher) = known[0]
        key = _key_for(info, key_infos)
    else:
        info, key = None, key_infos[0]
        agreement = "ECDH" if key.protocol == securityinfo.ID_PK_ECDH else "DH"
        cipher = Cipher.DES3
    try:
        group, chip_public = group_of_der(key.public_key_info)
    except (KeyError, IndexError, AttributeError, TypeError) as exc:
        # asn1crypto's answers to a malformed or unknown SubjectPublicKeyInfo (e.g.
        # KeyError for an algorithm OID it has no name for): a damaged DG14 is a
        # result, never a crash of the read (found by fuzz/fuzz_dg14_keys.py)
        raise SignatureError(f"DG14 key is malformed ({type(exc).__name__}: {exc})") from exc
    protocol = info.protocol if info else securityinfo.ca_oid(agreement == "ECDH", cipher)
    key_id = info.key_id if info and info.key_id is not None else key.key_id
    return CaParameters(protocol, agreement, cipher, key_id, group, chip_public)


def _key_for(info: ChipAuthenticationInfo,
             keys_: list[ChipAuthenticationPublicKeyInfo]) -> ChipAuthenticationPublicKeyInfo:
    if info.key_id is not None:
        for key in keys_:
            if key.key_id == info.key_id:
                return key
    return keys_[0]


def key_id_bytes(key_id: int) -> bytes:
    return key_id.to_bytes(max(1, (key_id.bit_length() + 7) // 8), "big")


def oid_value(oid: str) -> bytes:
    """The content octets of an OID (DO80 carries them without the 06 tag)."""
    return bytes(core.ObjectIdentifier(oid).contents)


def ca_commands(ca: CaParameters, ephemeral_public: bytes) -> list[Command]:
    """The command APDUs (plain; SM wraps them) of 9303-11 §6.2."""
    key_ref = ber.encode(DO_KEY_ID, key_id_bytes(ca.key_id)) if ca.key_id is not None else b""
    if ca.cipher is Cipher.DES3:
        return [Command(0x00, Ins.MSE, MSE_SET_P1, MSE_KAT, ber.encode(DO_EPHEMERAL_KEY, ephemeral_public) + key_ref)]
    return [
        Command(0x00, Ins.MSE, MSE_SET_P1, MSE_AT, ber.encode(DO_PROTOCOL, oid_value(ca.protocol)) + key_ref),
        Command(0x00, Ins.GENERAL_AUTHENTICATE, 0x00, 0x00,
                ber.encode(DO_DYNAMIC_AUTH, ber.encode(DO_GA_EPHEMERAL, ephemeral_public)), SHORT_LE_MAX),
    ]


def session_keys(shared_secret: bytes, cipher: Cipher) -> tuple[bytes, bytes]:
    """KSenc, KSmac from the CA shared secret (9303-11 §9.7.1)."""
    return crypto.kdf(shared_secret, crypto.KDF_ENC, cipher), crypto.kdf(shared_secret, crypto.KDF_MAC, cipher)


@dataclass
class CaOutcome:
    check: CheckResult
    #: the channel to use from now on: the re-keyed session after CA, else the one given
    channel: Channel
    #: the CA commands went through and secure messaging was re-keyed, but no response
    #: under the new keys has been checked yet (``confirm=False``)
    pending: bool = False
    details: dict[str, str] | None = None


def chip_authentication(channel: Channel, dg14: bytes, *, rng: Rng, confirm: bool = True,
                        infos: SecurityInfos | None = None) -> CaOutcome:
    """Run CA over ``channel`` (a ``SecureMessaging`` session) with DG14's key.
    ``infos``: DG14 already parsed by the caller (``agent.icao.read`` parses each file
    once); parsed from ``dg14`` otherwise. ``dg14`` itself confirms the new keys.

    Returns valid (re-keyed channel confirmed), invalid (the chip refused or could not
    answer under the new keys: it does not hold the private key), not_supported (DG14
    offers no CA) or error (DG14 unusable). With ``confirm=False`` a CA whose commands
    went through comes back ``pending`` with the re-keyed channel (see the module
    docstring). A transport failure (reader, card removed) propagates as its own
    exception."""
    try:
        ca = select_parameters(infos if infos is not None else securityinfo.parse_security_infos(dg14, source="DG14"))
    except (ParseError, SignatureError, ValueError) as exc:
        return CaOutcome(CheckResult(Status.ERROR, f"DG14 chip authentication key unusable: {exc}"), channel)
    if ca is None:
        return CaOutcome(CheckResult.not_supported("DG14 offers no Chip Authentication key"), channel)
    if not isinstance(channel, SecureMessaging):
        return CaOutcome(CheckResult(Status.ERROR, "Chip Authentication needs a secure messaging session"), channel)
    details = {"protocol": ca.protocol, "agreement": ca.agreement, "cipher": ca.cipher.label,
               "group": ca.group.name}
    ephemeral, shared = agree(ca.group, ca.group.random_private(rng), ca.chip_public)
    try:
        for command in ca_commands(ca, ephemeral):
            response = channel.send(command)
            logger.debug("CA step %02X SW=%04X", command.ins, response.sw)
            if not response.ok:
                return CaOutcome(CheckResult(Status.INVALID, f"the chip refused Chip Authentication "
                                             f"(SW {response.sw:04X} to {_step(command)})", details=details), channel)
    except SecureMessagingError as exc:
        return CaOutcome(CheckResult(Status.ERROR, f"secure messaging failed during Chip Authentication: "
                                     f"{exc.message}", details=details), channel)
    ks_enc, ks_mac = session_keys(shared, ca.cipher)
    rekeyed = SecureMessaging(channel.inner, ks_enc, ks_mac, ca.cipher, ssc=0)
    pending = CaOutcome(CheckResult.not_checked("Chip Authentication keys not yet confirmed"), rekeyed,
                        pending=True, details=details)
    return CaOutcome(confirm_chip_authentication(pending, dg14), rekeyed) if confirm else pending


def agree(group: EcGroup | DhGroup, private: int, chip_public: Element) -> tuple[bytes, bytes]:
    """(our ephemeral public key encoded, the shared secret) of CA's key agreement.
    On curves OpenSSL knows, its constant-time ECDH does the work (a few times faster
    than the pure-Python arithmetic, which stays for the others); the scalar, the
    encodings and the secret (the x-coordinate, 9303-11 §9.6) are the same."""
    curve_class = certs.CURVES.get(certs.curve_asn1_name(group.curve.name)) if isinstance(group, EcGroup) else None
    if curve_class is None:
        return group.encode(group.mul_generator(private)), group.shared_secret(group.mul(private, chip_public))
    curve = curve_class()
    key = cec.derive_private_key(private, curve)
    peer = cec.EllipticCurvePublicKey.from_encoded_point(curve, group.encode(chip_public))
    ephemeral = key.public_key().public_bytes(serialization.Encoding.X962,
                                              serialization.PublicFormat.UncompressedPoint)
    return ephemeral, key.exchange(cec.ECDH(), peer)


def _step(command: Command) -> str:
    return "GENERAL AUTHENTICATE" if command.ins == Ins.GENERAL_AUTHENTICATE else "MSE:Set"


def confirm_chip_authentication(outcome: CaOutcome, dg14: bytes) -> CheckResult:
    """The final CA check of a ``pending`` outcome: valid at no cost when a response
    under the new keys already carried a valid MAC (a file read after CA), else one
    READ BINARY of DG14 under them. A non-pending outcome is returned as it is."""
    if not outcome.pending:
        return outcome.check
    session, details = outcome.channel, outcome.details or {}
    assert isinstance(session, SecureMessaging)
    if session.macs_verified:
        return _valid(details)
    return _confirm(session, dg14, details)


def failed_under_new_keys(outcome: CaOutcome, exc: IdAgentError) -> CheckResult:
    """A pending CA whose first exchange under the new keys failed (a MAC that does not
    verify, 6987/6988): the chip derived other keys, it lacks DG14's private key."""
    return CheckResult(Status.INVALID, "the chip could not answer under the Chip Authentication keys "
                                       f"({exc.message}): it does not hold the private key of DG14",
                       details=outcome.details or {})


def _valid(details: dict[str, str]) -> CheckResult:
    return CheckResult(Status.VALID, f"the chip proved the DG14 key ({ca_label(details)}); "
                                     "secure messaging restarted with the new keys", details=details)


def _read_dg14_start(session: SecureMessaging) -> tuple[int, bytes]:
    """The first bytes of DG14: one READ BINARY by SFI; SELECT + READ BINARY for a chip
    refusing SFI addressing."""
    read = session.send(Command(0x00, Ins.READ_BINARY, P1_SFI | DG14_SFI, 0x00, le=CONFIRM_BYTES))
    if read.sw not in NO_SFI_SW:
        return read.sw, read.data
    select = session.send(Command(0x00, Ins.SELECT, 0x02, 0x0C, DG14_FID.to_bytes(2, "big")))
    if not select.ok:
        return select.sw, b""
    read = session.send(Command(0x00, Ins.READ_BINARY, 0x00, 0x00, le=CONFIRM_BYTES))
    return read.sw, read.data


def _confirm(session: SecureMessaging, dg14: bytes, details: dict[str, str]) -> CheckResult:
    """Re-read the start of DG14 under the new keys: a chip without DG14's private key
    derived other keys, so its MAC fails (9303-11 §6.2: CA is implicit)."""
    try:
        sw, data = _read_dg14_start(session)
    except SecureMessagingError as exc:
        return CheckResult(Status.INVALID, "the chip could not answer under the Chip Authentication keys "
                                           f"({exc.message}): it does not hold the private key of DG14",
                           details=details)
    if sw != SW.OK:
        return CheckResult(Status.INVALID, f"the chip refused to read DG14 after Chip Authentication "
                                           f"(SW {sw:04X})", details=details)
    if not hmac.compare_digest(data, dg14[:CONFIRM_BYTES]):
        return CheckResult(Status.INVALID, "DG14 read under the new keys differs from DG14 read before",
                           details=details)
    return _valid(details)


def ca_label(details: dict[str, str]) -> str:
    return f"{details['agreement']} on {details['group']}, {details['cipher']}"


# -- PACE with Chip Authentication Mapping ------------------------------------------------

def verify_pace_cam(ca_ic: bytes | None, chip_mapping_key: bytes | None, dg14: bytes | SecurityInfos) -> CheckResult:
    """9303-11 §4.4 (Chip Authentication Mapping): with PACE-CAM the chip sends CA_IC = SK_map,IC · SK_IC⁻¹; the
    terminal checks CA_IC · PK_IC = PK_map,IC with PK_IC from DG14 (proven by PA).
    The key to use is the one EF.CardSecurity publishes for the PACE parameter id
    (``agent.icao.cardsecurity``); DG14's key is used when it is the same key."""
    try:
        infos = dg14 if isinstance(dg14, SecurityInfos) else securityinfo.parse_security_infos(dg14, source="DG14")
        ca = select_parameters(infos)
    except (ParseError, SignatureError, ValueError) as exc:
        return CheckResult(Status.ERROR, f"DG14 chip authentication key unusable: {exc}")
    if ca is None:
        return CheckResult(Status.ERROR, "PACE-CAM needs an ECDH Chip Authentication key in DG14")
    return check_cam(ca_ic, chip_mapping_key, ca.group, ca.chip_public, "DG14's key")


def check_cam(ca_ic: bytes | None, chip_mapping_key: bytes | None, group: EcGroup | DhGroup,
              chip_public: Element, key_name: str) -> CheckResult:
    """CA_IC · PK_IC = PK_map,IC (9303-11 §4.4.3.5) with the given chip key."""
    if ca_ic is None or chip_mapping_key is None:
        return CheckResult(Status.ERROR, "PACE-CAM result lacks the chip's CA data or mapping key")
    if not isinstance(group, EcGroup):
        return CheckResult(Status.ERROR, f"PACE-CAM needs an ECDH key; {key_name} is DH")
    scalar = int.from_bytes(ca_ic, "big")
    if not 0 < scalar < group.order:
        return CheckResult(Status.INVALID, "PACE-CAM: CA_IC is out of range")
    try:
        expected = group.encode(group.mul(scalar, chip_public))
    except ValueError:
        return CheckResult(Status.INVALID, "PACE-CAM: CA_IC · PK_IC is the point at infinity")
    if not hmac.compare_digest(expected, chip_mapping_key):
        return CheckResult(Status.INVALID, f"PACE-CAM: the chip's mapping key does not match {key_name} "
                                           "(it does not hold the private key)")
    return CheckResult(Status.VALID, f"PACE-CAM proved {key_name} (ECDH on {group.name})",
                       details={"protocol": "PACE-CAM", "group": group.name})
