"""Reader slots: a snapshot of each slot's state, and two snapshots turned into ``ReaderEvent``s.

Every backend polls or waits in its own way (PC/SC status change, nfcpy sense loop,
in-process slots) but reports changes the same way: compare what it saw last time with
what it sees now. ``generation`` counts card insertions so that a card taken off and
put back between two looks still yields removed + inserted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from agent.readers.base import EventKind, ReaderEvent


@dataclass(frozen=True)
class SlotState:
    card_present: bool
    atr: bytes = b""
    generation: int = 0


def diff_states(old: Mapping[str, SlotState], new: Mapping[str, SlotState]) -> list[ReaderEvent]:
    """Events leading from ``old`` to ``new``: attachments first, then card removals,
    insertions, and detachments last (a detached reader's card is removed first)."""
    events: list[ReaderEvent] = []
    for name in new:
        if name not in old:
            events.append(ReaderEvent(EventKind.READER_ATTACHED, name))
    for name, was in old.items():
        if was.card_present and not _same_card(was, new.get(name)):
            events.append(ReaderEvent(EventKind.CARD_REMOVED, name, was.atr))
    for name, now in new.items():
        if now.card_present and not _same_card(now, old.get(name)):
            events.append(ReaderEvent(EventKind.CARD_INSERTED, name, now.atr))
    for name in old:
        if name not in new:
            events.append(ReaderEvent(EventKind.READER_DETACHED, name))
    return events


def _same_card(state: SlotState, other: SlotState | None) -> bool:
    """Whether ``other`` still shows the card of ``state`` (present, same insertion)."""
    return other is not None and other.card_present and other.generation == state.generation
