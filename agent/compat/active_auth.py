"""Work on the card still on the reader, for the reader-kit client events.

``/get_aa`` asks the chip to sign the client's own challenge (Active Authentication,
9303-11 §6.1), so desk software that verifies the signature itself gets a fresh proof
that the chip is the original. The chip answers INTERNAL AUTHENTICATE only inside a
secure-messaging session: the session is opened again with the keys derived from the
identity just read (no access key is kept after a read).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from agent.errors import IdAgentError
from agent.icao import access as access_mod
from agent.icao.aa import internal_authenticate
from agent.icao.keys import AccessKey, CanKey, MrzKey, document_number_of, yymmdd
from agent.icao.select import select_application
from agent.identity import Identity
from agent.readers.apdu import ApduChannel
from agent.readers.base import CardConnection


def keys_of(identity: Identity, *, no_expiry_year: int = 2099) -> list[AccessKey]:
    """The keys that opened this card, rebuilt from its own data: the CAN (last 6 digits
    of the ID number), then the MRZ data (document number, birth, expiry)."""
    keys: list[AccessKey] = []
    if identity.id_number and len(identity.id_number) == 12 and identity.id_number.isdigit():
        keys.append(CanKey.of_id_number(identity.id_number))
    document = identity.document_number or (document_number_of(identity.id_number) if identity.id_number else None)
    birth = identity.date_of_birth
    if document and birth is not None:
        expiry = (yymmdd(identity.date_of_expiry) if identity.date_of_expiry is not None
                  else f"{no_expiry_year % 100:02d}{birth:%m%d}")
        keys.append(MrzKey(document, yymmdd(birth), expiry))
    return keys


def sign_challenge(connection: CardConnection, keys: list[AccessKey], challenge: bytes, *,
                   prefer: str = "pace", rng: Callable[[int], bytes] = os.urandom) -> bytes:
    """Open the chip with the first key that works and have it sign ``challenge``."""
    if not keys:
        raise access_mod.AccessDeniedError("no access data for this card")
    channel = ApduChannel(connection)
    card_access = access_mod.read_card_access(channel)
    last: IdAgentError | None = None
    for key in keys:
        try:
            session, info = access_mod.establish(channel, key, card_access=card_access, rng=rng, prefer=prefer)
        except access_mod.AccessDeniedError as err:
            last = err
            continue
        if info.protocol == "PACE":
            # PACE runs in the MF: select the application under SM (9303-11 §4.4)
            select_application(session)
        return internal_authenticate(session, challenge)
    assert last is not None
    raise last
