"""Secure messaging (ICAO 9303-11 §9.8): a ``Channel`` that wraps another ``Channel``.

After BAC, PACE or Chip Authentication, every command is protected and every response
verified here; the file reader above does not know whether it talks in the clear.

Public API:

* ``SessionKeys(ks_enc, ks_mac, cipher)``: the key pair and the SM primitives
  (encrypt/decrypt with the SSC-derived IV, MAC over SSC || data). Shared by the
  terminal (``SecureMessaging``) and the virtual chip (agent.sim.chip_access).
* ``SecureMessaging(inner, ks_enc, ks_mac, cipher, ssc=0)``: the terminal side. Chip
  Authentication builds a new one from its derived keys with ``ssc=0``
  (9303-11 §6.2.3: the SSC restarts at zero after CA).
* ``SecureMessagingError`` (exit code 6): a MAC, SSC or data-object failure, or the
  chip answering 6987/6988. The session is then dead: every further ``send`` raises.
* ``AccessDeniedError`` (exit code 5): the chip refused the access key (6300).
* An unprotected error status word (no DO99/DO8E, e.g. 6700 to an extended APDU the
  chip cannot take) is returned as it is and not counted in the SSC on either side
  (the virtual chip follows the same rule); an unprotected 9000 is an attack.
* ``SecureMessaging.macs_verified`` counts the responses whose MAC verified: one such
  response under Chip Authentication keys proves the chip holds DG14's key.
* ``max_read_chunk(extended, block)``: the largest READ BINARY Le whose protected
  response still fits a short (256-byte) or extended response.
* Data objects are encoded and read by ``agent.icao.tlv`` (the one BER-TLV codec).

Never logs data or keys: headers and status words only.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, field

from agent.errors import IdAgentError, ParseError
from agent.icao import crypto
from agent.icao import tlv as ber
from agent.icao.crypto import Cipher
from agent.readers.apdu import LE_MAX, SHORT_LC_MAX, SHORT_LE_MAX, SW, Channel, Command, Response

logger = logging.getLogger(__name__)

#: SM data objects (9303-11 §9.8.5, ISO/IEC 7816-4 §10)
DO_ENC_PADDED = 0x87      # padding-content indicator byte + cryptogram (even INS)
DO_ENC_PLAIN = 0x85       # cryptogram without indicator (odd INS, e.g. READ BINARY B1)
DO_LE = 0x97
DO_SW = 0x99
DO_MAC = 0x8E
#: padding-content indicator: ISO/IEC 9797-1 method 2 padding
PADDING_INDICATOR = 0x01
#: CLA bits saying "SM, header authenticated" (ISO/IEC 7816-4 §5.4.1)
CLA_SM = 0x0C

_SESSION_HINT = "Lift the card and lay it down again; the secure channel was lost."


class SecureMessagingError(IdAgentError):
    """The secure channel failed (bad MAC, bad SSC, malformed data objects, 6987/6988)."""

    code = "secure_messaging"
    exit_code = 6
    hint = _SESSION_HINT


class AccessDeniedError(IdAgentError):
    """The chip refused the access key: wrong MRZ data or CAN (9303-11: SW 6300)."""

    code = "access_denied"
    exit_code = 5
    hint = "Check the CAN / MRZ data (document number, birth date, expiry date) and try again."


@dataclass(frozen=True, repr=False)
class SessionKeys:
    """KSenc, KSmac and the cipher of one SM session; the SSC is passed in per call."""

    ks_enc: bytes
    ks_mac: bytes
    cipher: Cipher

    def __post_init__(self) -> None:
        if len(self.ks_enc) != self.cipher.key_len or len(self.ks_mac) != self.cipher.key_len:
            raise ValueError("session key length does not match the cipher")

    def __repr__(self) -> str:
        return f"SessionKeys(cipher={self.cipher.label}, keys=******)"

    @property
    def block(self) -> int:
        return self.cipher.block

    def ssc_bytes(self, ssc: int) -> bytes:
        """The SSC is one cipher block wide (8 bytes 3DES, 16 bytes AES; 9303-11 §9.8.2)."""
        return (ssc % (1 << (8 * self.block))).to_bytes(self.block, "big")

    def encrypt(self, ssc: int, data: bytes) -> bytes:
        iv = crypto.sm_iv(self.cipher, self.ks_enc, self.ssc_bytes(ssc))
        return crypto.encrypt(self.cipher, self.ks_enc, crypto.pad(data, self.block), iv)

    def decrypt(self, ssc: int, data: bytes) -> bytes:
        iv = crypto.sm_iv(self.cipher, self.ks_enc, self.ssc_bytes(ssc))
        return crypto.unpad(crypto.decrypt(self.cipher, self.ks_enc, data, iv))

    def mac(self, ssc: int, data: bytes) -> bytes:
        """MAC over pad(SSC || data) (9303-11 §9.8.5.1, §9.8.6.2: AES-SM MACs the
        explicitly padded input too, then truncates the CMAC to 8 bytes)."""
        padded = crypto.pad(self.ssc_bytes(ssc) + data, self.block)
        if self.cipher is Cipher.DES3:
            return crypto.retail_mac(self.ks_mac, padded)
        return crypto.aes_cmac(self.ks_mac, padded)[:crypto.SM_MAC_LEN]


def encode_le(le: int, extended: bool) -> bytes:
    """The value of DO97: one byte (256 → 00) for short, two bytes (65536 → 0000) for extended."""
    return (le % LE_MAX).to_bytes(2, "big") if extended else bytes((le % SHORT_LE_MAX,))


def decode_le(value: bytes) -> int:
    """Inverse of ``encode_le``."""
    if len(value) == 1:
        return value[0] or SHORT_LE_MAX
    if len(value) == 2:
        return int.from_bytes(value, "big") or LE_MAX
    raise ValueError("DO97 must hold 1 or 2 bytes")


def encrypted_do(ins: int, cryptogram: bytes) -> bytes:
    """DO87 (with the padding indicator) for even INS, DO85 for odd INS (9303-11 §9.8.5)."""
    if ins & 1:
        return ber.encode(DO_ENC_PLAIN, cryptogram)
    return ber.encode(DO_ENC_PADDED, bytes((PADDING_INDICATOR,)) + cryptogram)


def max_read_chunk(extended: bool, block: int = crypto.AES_BLOCK) -> int:
    """The largest READ BINARY Le whose protected response fits one response APDU.

    The response is DO87 (tag, length octets, indicator byte, padded cryptogram) +
    DO99 (4 bytes) + DO8E (10 bytes); the data field may hold 256 bytes (short) or
    65536 (extended). For AES (16-byte blocks) the short answer is 223 = 0xDF, the
    size JMRTD uses; 3DES allows 231."""
    limit = LE_MAX if extended else SHORT_LE_MAX
    fixed = 1 + 1 + 4 + 10  # DO87 tag + indicator byte, DO99, DO8E
    best = 0
    # the length octets grow with the cryptogram: try each width
    for len_octets in (1, 2, 3):
        room = limit - fixed - len_octets
        cryptogram = room - room % block
        plain = cryptogram - 1  # method-2 padding always adds at least one byte
        if plain > 0 and len(ber.encode_length(cryptogram + 1)) == len_octets:
            best = max(best, plain)
    return best


def decrypt_data_object(keys: SessionKeys, ssc: int, found: dict[int, bytes]) -> bytes:
    """The plain data of DO87 (padding indicator 01, then the cryptogram) or DO85 (no
    padding) among ``found`` data objects, b"" when neither is there (ISO/IEC 7816-4
    §10.2.3, 9303-11 §9.8.4): both sides of the channel, the agent and the virtual chip.
    Raises ``ValueError`` naming what is wrong."""
    if DO_ENC_PADDED in found:
        value = found[DO_ENC_PADDED]
        if not value or value[0] != PADDING_INDICATOR:
            raise ValueError("DO87 lacks the padding indicator 01")
        cryptogram = value[1:]
    elif DO_ENC_PLAIN in found:
        cryptogram = found[DO_ENC_PLAIN]
    else:
        return b""
    if not cryptogram or len(cryptogram) % keys.block:
        raise ValueError("cryptogram is not a whole number of blocks")
    try:
        return keys.decrypt(ssc, cryptogram)
    except ValueError as exc:
        raise ValueError("decrypted data has bad padding") from exc


@dataclass
class SecureMessaging:
    """Terminal-side secure messaging: protects commands, verifies and decrypts
    responses (9303-11 §9.8). Implements the ``Channel`` protocol."""

    inner: Channel
    ks_enc: bytes = field(repr=False)
    ks_mac: bytes = field(repr=False)
    cipher: Cipher
    ssc: int = 0
    alive: bool = True
    #: responses whose MAC verified under these keys: one proves the chip derived the
    #: same keys (used to confirm Chip Authentication without a dedicated APDU)
    macs_verified: int = 0
    #: the last answer was a bare status word, outside secure messaging: the chip's SM
    #: layer did not vouch for it (a refusal before SM, or a fault on the way)
    last_unprotected: bool = False

    def __post_init__(self) -> None:
        self.keys = SessionKeys(self.ks_enc, self.ks_mac, self.cipher)

    def __repr__(self) -> str:
        return f"SecureMessaging(cipher={self.cipher.label}, alive={self.alive})"

    @property
    def extended_length(self) -> bool:
        return bool(self.inner.extended_length)

    def max_read_chunk(self) -> int:
        return max_read_chunk(self.extended_length, self.cipher.block)

    def close(self) -> None:
        """End the session: further sends raise."""
        self.alive = False

    def _fail(self, message: str) -> SecureMessagingError:
        self.alive = False
        logger.info("secure messaging session ended: %s", message)
        return SecureMessagingError(message)

    def protect(self, command: Command) -> Command:
        """Build the protected command (9303-11 §9.8.5.1); advances the SSC."""
        ext = command.le is not None and command.le > SHORT_LE_MAX
        self.ssc += 1
        header = bytes((command.cla | CLA_SM, command.ins, command.p1, command.p2))
        body = b""
        if command.data:
            body += encrypted_do(command.ins, self.keys.encrypt(self.ssc, command.data))
        if command.le is not None:
            body += ber.encode(DO_LE, encode_le(command.le, ext))
        mac_input = crypto.pad(header, self.keys.block) + body
        body += ber.encode(DO_MAC, self.keys.mac(self.ssc, mac_input))
        ext = ext or len(body) > SHORT_LC_MAX
        return Command(header[0], command.ins, command.p1, command.p2, body,
                       LE_MAX if ext else SHORT_LE_MAX)

    def unprotect(self, response: Response) -> Response:
        """Verify and decrypt a protected response (9303-11 §9.8.5.2); advances the SSC."""
        if response.sw in (SW.SM_DATA_OBJECTS_MISSING, SW.SM_DATA_OBJECTS_INCORRECT):
            raise self._fail(f"the chip rejected our secure messaging ({response.sw:04X})")
        self.last_unprotected = not response.data
        if not response.data:
            # An unprotected status word: the chip answered before its SM layer (a
            # length it cannot take, 6700 to an extended APDU, ...), so it did not count
            # the command either; we undo our count so the SSCs stay equal. A success
            # must always be MACed.
            if response.sw == SW.OK:
                raise self._fail("the chip answered 9000 without a MAC")
            self.ssc -= 1
            return response
        self.ssc += 1
        try:
            objects = ber.pairs(response.data, source="SM response")
        except ParseError as exc:
            raise self._fail(f"malformed secure messaging response: {exc.message}") from exc
        return self._verify(objects, response.sw)

    def _verify(self, objects: list[tuple[int, bytes]], outer_sw: int) -> Response:
        found: dict[int, bytes] = {}
        mac_input = b""
        for tag, value in objects:
            if tag in found:
                raise self._fail(f"data object {tag:02X} appears twice")
            found[tag] = value
            if tag in (DO_ENC_PADDED, DO_ENC_PLAIN, DO_SW):
                mac_input += ber.encode(tag, value)
        if DO_MAC not in found or DO_SW not in found:
            raise self._fail("response lacks DO8E or DO99")
        expected = self.keys.mac(self.ssc, mac_input)
        if not hmac.compare_digest(expected, found[DO_MAC]):
            raise self._fail("response MAC does not verify")
        self.macs_verified += 1
        sw_value = found[DO_SW]
        if len(sw_value) != 2:
            raise self._fail("DO99 must hold 2 bytes")
        sw = int.from_bytes(sw_value, "big")
        if sw != outer_sw:
            logger.debug("protected SW %04X differs from outer SW %04X", sw, outer_sw)
        return Response(self._decrypt_data(found), sw)

    def _decrypt_data(self, found: dict[int, bytes]) -> bytes:
        try:
            return decrypt_data_object(self.keys, self.ssc, found)
        except ValueError as exc:
            raise self._fail(str(exc)) from exc

    def send(self, command: Command) -> Response:
        if not self.alive:
            raise SecureMessagingError("the secure messaging session has ended")
        protected = self.protect(command)
        logger.debug("SM > %s", command.header())
        response = self.inner.send(protected)
        plain = self.unprotect(response)
        logger.debug("SM < SW=%04X len=%d", plain.sw, len(plain.data))
        return plain
