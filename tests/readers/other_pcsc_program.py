"""Another PC/SC program on the same reader, for tests (issue 14 item 3): a separate
process with its own pcscd connection, as a browser plug-in or a vendor tool would be.

    python other_pcsc_program.py READER STOPFILE

Connects shared to READER, prints {"ready": true}, then sends GET CHALLENGE (plain,
00 84 00 00 08) every few milliseconds, prints {"working": true} after its first answer,
and goes on until STOPFILE exists and one more exchange, sent after that, was answered;
then prints one JSON line: {"answers": [[sent, answered, sw], ...], "errors": {code:
count}} (wall-clock times).
After a reset of the card (another connection closing with SCARD_RESET_CARD) it
reconnects, as a well-behaved program does.
"""

from __future__ import annotations

import json
import os
import sys
import time

from smartcard import scard

GET_CHALLENGE = [0x00, 0x84, 0x00, 0x00, 0x08]


def main(reader: str, stop_file: str) -> int:
    hresult, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        print(json.dumps({"error": scard.SCardGetErrorMessage(hresult)}), flush=True)
        return 1
    hresult, hcard, protocol = scard.SCardConnect(ctx, reader, scard.SCARD_SHARE_SHARED,
                                                  scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
    if hresult != scard.SCARD_S_SUCCESS:
        print(json.dumps({"error": scard.SCardGetErrorMessage(hresult)}), flush=True)
        return 1
    print(json.dumps({"ready": True}), flush=True)
    answers: list[list[object]] = []
    errors: dict[str, int] = {}
    tries_after_stop = 0
    while tries_after_stop < 1000:
        stopping = os.path.exists(stop_file)
        tries_after_stop += stopping
        sent = time.time()
        hresult, response = scard.SCardTransmit(hcard, protocol, GET_CHALLENGE)
        answered = time.time()
        if hresult == scard.SCARD_S_SUCCESS:
            answers.append([sent, answered, bytes(response[-2:]).hex().upper()])
            if len(answers) == 1:
                print(json.dumps({"working": True}), flush=True)
            if stopping:
                break  # an exchange sent once the stop file existed: the last one
        else:
            key = f"{hresult & 0xFFFFFFFF:08X}"
            errors[key] = errors.get(key, 0) + 1
            if hresult & 0xFFFFFFFF == scard.SCARD_W_RESET_CARD & 0xFFFFFFFF:
                # the card was reset (our reader's connection closes with a reset):
                # a well-behaved program reconnects and goes on
                hresult, protocol = scard.SCardReconnect(hcard, scard.SCARD_SHARE_SHARED,
                                                         scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
                                                         scard.SCARD_LEAVE_CARD)
        time.sleep(0.003)
    scard.SCardDisconnect(hcard, scard.SCARD_LEAVE_CARD)
    scard.SCardReleaseContext(ctx)
    print(json.dumps({"answers": answers, "errors": errors}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
