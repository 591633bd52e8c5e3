"""The card side of access control and secure messaging for the virtual chip.

* ``CardSession``: secure messaging as the chip does it (ICAO 9303-11 §9.8): unwrap a
  protected command (verify DO8E over the header, DO87/DO85 and DO97; decrypt), wrap a
  response (DO87/DO85, DO99, DO8E). Any failure raises ``SmFault``: the chip then
  answers 6988 and drops the session, as real chips do.
* ``bac_answer(...)``: EXTERNAL AUTHENTICATE of BAC (9303-11 §4.3.3).
* ``ChipPace``: the PACE state machine after MSE:Set AT (9303-11 §4.4), Generic and
  Integrated Mapping over ECDH/DH and Chip Authentication Mapping, with the
  primitives of agent.icao.pace.

Randomness comes from the chip's injected rng: nonce s, then the mapping key (GM/CAM),
then the ephemeral key, so tests can feed the vectors of 9303-11 Appendix G.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from agent.errors import ParseError
from agent.icao import bac, crypto, pace, params
from agent.icao import tlv as ber
from agent.icao.crypto import Cipher
from agent.icao.keys import MrzKey
from agent.icao.params import Element
from agent.icao.securityinfo import Mapping, PaceInfo
from agent.icao.sm import (
    CLA_SM,
    DO_ENC_PADDED,
    DO_ENC_PLAIN,
    DO_LE,
    DO_MAC,
    DO_SW,
    SessionKeys,
    decode_le,
    decrypt_data_object,
    encrypted_do,
)
from agent.readers.apdu import SW, Command, Response
from agent.rng import Rng


class SmFault(Exception):
    """A protected command the chip cannot accept (answer 6988, drop the session)."""


class CardSession:
    """Chip-side secure messaging with one set of session keys."""

    def __init__(self, keys: SessionKeys, ssc: int = 0) -> None:
        self.keys = keys
        self.ssc = ssc

    def __repr__(self) -> str:
        return f"CardSession(cipher={self.keys.cipher.label})"

    def unwrap(self, command: Command) -> Command:
        """Verify and decrypt a protected command; advances the SSC."""
        self.ssc += 1
        try:
            objects = ber.pairs(command.data, source="SM command")
        except ParseError as exc:
            raise SmFault("malformed data objects") from exc
        found = dict(objects)
        if DO_MAC not in found or len(found) != len(objects):
            raise SmFault("missing or repeated data objects")
        header = bytes((command.cla, command.ins, command.p1, command.p2))
        mac_input = crypto.pad(header, self.keys.block)
        mac_input += b"".join(ber.encode(t, v) for t, v in objects if t in (DO_ENC_PADDED, DO_ENC_PLAIN, DO_LE))
        if not hmac.compare_digest(self.keys.mac(self.ssc, mac_input), found[DO_MAC]):
            raise SmFault("bad MAC")
        data = self._decrypt(found)
        try:
            le = decode_le(found[DO_LE]) if DO_LE in found else None
        except ValueError as exc:
            raise SmFault("bad DO97") from exc
        return Command(command.cla & ~CLA_SM & 0xFF, command.ins, command.p1, command.p2, data, le)

    def _decrypt(self, found: dict[int, bytes]) -> bytes:
        try:
            return decrypt_data_object(self.keys, self.ssc, found)
        except ValueError as exc:
            raise SmFault(str(exc)) from exc

    def wrap(self, response: Response, ins: int) -> Response:
        """Protect a response (DO87/DO85 for even/odd INS, DO99, DO8E); advances the SSC."""
        self.ssc += 1
        body = b""
        if response.data:
            body += encrypted_do(ins, self.keys.encrypt(self.ssc, response.data))
        body += ber.encode(DO_SW, response.sw.to_bytes(2, "big"))
        body += ber.encode(DO_MAC, self.keys.mac(self.ssc, body))
        return Response(body, response.sw)


# ---- BAC (9303-11 §4.3.3) ----

def bac_answer(key: MrzKey, rnd_ic: bytes, k_ic: bytes, data: bytes) -> tuple[bytes, CardSession] | None:
    """The chip's EXTERNAL AUTHENTICATE: None when the cryptogram does not verify
    (wrong MRZ data → 6300), else the answer and the new 3DES session."""
    k_enc, k_mac = bac.basic_access_keys(key)
    plain = bac.open_cryptogram(k_enc, k_mac, data)
    if plain is None or not hmac.compare_digest(plain[8:16], rnd_ic):
        return None
    rnd_ifd, k_ifd = plain[:8], plain[16:32]
    answer = bac.build_cryptogram(k_enc, k_mac, rnd_ic + rnd_ifd + k_ic)
    session = bac.session_from_exchange(k_ifd, k_ic, rnd_ic, rnd_ifd)
    return answer, CardSession(SessionKeys(session.ks_enc, session.ks_mac, Cipher.DES3), session.ssc)


# ---- PACE (9303-11 §4.4) ----

@dataclass
class PaceOutcome:
    """What a GENERAL AUTHENTICATE step produced: the answer, and after the last step
    the new session (installed after the answer is sent in the clear)."""

    response: Response
    session: CardSession | None = None
    finished: bool = False


def _answer(*objects: tuple[int, bytes]) -> Response:
    return Response(pace.dynamic_auth(*objects), SW.OK)


class ChipPace:
    """One PACE run on the chip, from MSE:Set AT to the tokens."""

    def __init__(self, info: PaceInfo, secret: bytes, rng: Rng, cam_private_key: int | None = None) -> None:
        assert info.mapping is not None and info.cipher is not None and info.parameter_id is not None
        self.info = info
        self.mapping: Mapping = info.mapping
        self.cipher: Cipher = info.cipher
        self.group = params.by_id(info.parameter_id)
        self.secret = secret
        self.rng = rng
        self.cam_private_key = cam_private_key
        self.step = 0
        self.nonce = b""
        self.sk_map = 0
        self.generator: Element = self.group.generator
        self.sk_eph = 0
        self.pk_eph: Element = self.group.generator
        self.pk_eph_ifd: Element = self.group.generator
        self.ks_enc = self.ks_mac = b""

    def handle(self, command: Command) -> PaceOutcome:
        """Answer the next GENERAL AUTHENTICATE; ``finished`` ends the run (success or not)."""
        try:
            objects = pace.parse_dynamic_auth(command.data, "GENERAL AUTHENTICATE")
        except ParseError:
            return PaceOutcome(Response(b"", SW.WRONG_DATA), finished=True)
        last = not command.cla & pace.CLA_CHAINING
        if last != (self.step == 3):
            return PaceOutcome(Response(b"", SW.WRONG_DATA), finished=True)
        steps = (self._nonce, self._map, self._agree, self._tokens)
        try:
            return steps[self.step](objects)
        except ValueError:
            return PaceOutcome(Response(b"", SW.WRONG_DATA), finished=True)

    def _nonce(self, objects: dict[int, bytes]) -> PaceOutcome:
        if objects:
            raise ValueError("step 1 takes an empty 7C")
        self.nonce = self.rng(pace.nonce_length(self.cipher))
        k_pi = crypto.kdf(self.secret, crypto.KDF_PI, self.cipher)
        self.step = 1
        return PaceOutcome(_answer((pace.TAG_NONCE, crypto.encrypt(self.cipher, k_pi, self.nonce))))

    def _map(self, objects: dict[int, bytes]) -> PaceOutcome:
        if self.mapping in pace.INTEGRATED_MAPPINGS:
            t = objects.get(pace.TAG_MAP_IFD, b"")
            self.generator = pace.im_generator(self.group, self.cipher, self.nonce, t)
            self.step = 2
            return PaceOutcome(_answer())
        pk_ifd = self.group.decode(objects[pace.TAG_MAP_IFD]) if pace.TAG_MAP_IFD in objects else None
        if pk_ifd is None:
            raise ValueError("no mapping key")
        self.sk_map = self.group.random_private(self.rng)
        pk_map = self.group.mul_generator(self.sk_map)
        if pk_map == pk_ifd:
            raise ValueError("echoed mapping key")
        self.generator = pace.gm_generator(self.group, self.nonce, self.group.mul(self.sk_map, pk_ifd))
        self.step = 2
        return PaceOutcome(_answer((pace.TAG_MAP_IC, self.group.encode(pk_map))))

    def _agree(self, objects: dict[int, bytes]) -> PaceOutcome:
        if pace.TAG_EPH_IFD not in objects:
            raise ValueError("no ephemeral key")
        self.pk_eph_ifd = self.group.decode(objects[pace.TAG_EPH_IFD])
        self.sk_eph = self.group.random_private(self.rng)
        self.pk_eph = self.group.mul(self.sk_eph, self.generator)
        if self.pk_eph == self.pk_eph_ifd:
            raise ValueError("echoed ephemeral key")
        shared = self.group.shared_secret(self.group.mul(self.sk_eph, self.pk_eph_ifd))
        self.ks_enc, self.ks_mac = pace.session_keys(shared, self.cipher)
        self.step = 3
        return PaceOutcome(_answer((pace.TAG_EPH_IC, self.group.encode(self.pk_eph))))

    def _tokens(self, objects: dict[int, bytes]) -> PaceOutcome:
        oid = self.info.protocol
        expected = pace.token(self.cipher, self.ks_mac, oid, self.group, self.pk_eph)
        if not hmac.compare_digest(objects.get(pace.TAG_TOKEN_IFD, b""), expected):
            # the terminal derived other keys: its password was wrong (9303-11 §4.4.4.2)
            return PaceOutcome(Response(b"", SW.WARNING_AUTH_FAILED), finished=True)
        answer = [(pace.TAG_TOKEN_IC, pace.token(self.cipher, self.ks_mac, oid, self.group, self.pk_eph_ifd))]
        if self.mapping is Mapping.ECDH_CAM:
            answer.append((pace.TAG_CAM_DATA, self._cam_data()))
        session = CardSession(SessionKeys(self.ks_enc, self.ks_mac, self.cipher), 0)
        return PaceOutcome(_answer(*answer), session, finished=True)

    def _cam_data(self) -> bytes:
        """CA_IC = SK_IC⁻¹ · SK_map,IC mod n, encrypted (9303-11 §4.4.3.5.1)."""
        if self.cam_private_key is None:
            raise ValueError("CAM needs the chip's Chip Authentication private key")
        n = self.group.order
        ca_ic = pow(self.cam_private_key, -1, n) * self.sk_map % n
        size = (n.bit_length() + 7) // 8
        return pace.encrypt_cam_data(self.ks_enc, ca_ic.to_bytes(size, "big"))
