"""SELECT as the eMRTD uses it (ISO/IEC 7816-4 §11.1.1, 9303-10 §3.6): the eMRTD
application by its AID, and elementary files by file identifier. The AID and the P1/P2
values are defined here and nowhere else; ``select_application`` is the one place that
selects the application, in the clear before BAC and under secure messaging after PACE.
"""

from __future__ import annotations

import enum
import logging

from agent.readers.apdu import SW, Channel, Command, Ins, Response

logger = logging.getLogger(__name__)


class Aid(bytes, enum.Enum):
    """Application identifiers."""

    #: the eMRTD (LDS1) application (9303-10 §3.6.1)
    EMRTD = bytes.fromhex("A0000002471001")


class SelectBy(enum.IntEnum):
    """SELECT P1 (ISO/IEC 7816-4 §11.1.1, table 39)."""

    #: by file identifier: the MF, or any file of the current DF
    FID = 0x00
    #: an EF under the current DF
    EF = 0x02
    #: a DF by name (the application's AID)
    AID = 0x04


#: SELECT P2: no answer data (no FCI, FCP or FMD; 9303-10 §3.6.1)
NO_FCI = 0x0C


def select_command(by: SelectBy, identifier: bytes) -> Command:
    return Command(0x00, Ins.SELECT, by, NO_FCI, identifier)


def select_application(channel: Channel, aid: Aid = Aid.EMRTD) -> Response:
    """SELECT the application by AID. Before BAC (9303-11 §4.3) in the clear, after
    PACE (which runs in the MF, 9303-11 §4.4) under secure messaging. The answer is
    returned, not raised: before BAC a refusal is only logged (BAC then tells); the
    file reader refuses to go on."""
    response = channel.send(select_command(SelectBy.AID, aid.value))
    if response.sw != SW.OK:
        logger.info("SELECT of the %s application answered %04X", aid.name, response.sw)
    return response
