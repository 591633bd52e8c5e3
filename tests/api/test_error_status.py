"""Issue 15 item 3: the local API answers an error with the HTTP status its class
states (``http_status``), not one worked out from its code string or exit code."""

from __future__ import annotations

import pytest

from agent.api.request import NoPhotoError, RequestError
from agent.desk.errors import (
    AccessNeededError,
    AlteredDataRefusedError,
    CloneRefusedError,
    InternalError,
    NoIdentityError,
    NotConfiguredError,
)
from agent.errors import IdAgentError, NoCardError, NoReaderError, ParseError, UpstreamError
from agent.icao.mrz import MrzError
from agent.qr.images import QrImageError
from agent.qr.payload import NotCccdError
from agent.wedge.qrtext import WedgeNotFromChip, WedgeRefused, WedgeUnverified
from agent.wedge.trigger import WedgeBusy, WedgeFailed
from agent.wedge.wedge import WedgeConfigError, WedgeDisabled, WedgeNoWindow, WedgeSeveralWindows
from agent.wedge.x11 import WedgeFocusLost, WedgeUnavailable

STATUS = [
    (NoIdentityError, 404), (NoReaderError, 404), (NoPhotoError, 404),
    (RequestError, 400), (ParseError, 400), (MrzError, 400), (NotCccdError, 400),
    (AccessNeededError, 409), (NotConfiguredError, 409), (NoCardError, 409), (CloneRefusedError, 409),
    (AlteredDataRefusedError, 409),
    (UpstreamError, 502),
    (QrImageError, 422),
    (InternalError, 500), (IdAgentError, 500),
    (WedgeRefused, 409), (WedgeUnverified, 409), (WedgeNotFromChip, 409), (WedgeNoWindow, 409),
    (WedgeSeveralWindows, 409), (WedgeBusy, 409), (WedgeFocusLost, 409), (WedgeDisabled, 403),
    (WedgeUnavailable, 503), (WedgeConfigError, 503), (WedgeFailed, 500),
]


@pytest.mark.parametrize(("cls", "status"), STATUS, ids=[c.__name__ for c, _ in STATUS])
def test_each_error_class_carries_its_http_status(cls: type[IdAgentError], status: int) -> None:
    assert cls.http_status == status


def _subclasses(cls: type[IdAgentError]) -> list[type[IdAgentError]]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def test_every_upstream_failure_is_a_bad_gateway() -> None:
    """What ``exit_code == 7`` used to decide: an error the CLI reports as an upstream
    failure is a 502 at the API, because it is an ``UpstreamError``."""
    import agent.forward.opencps  # noqa: F401 - its errors join the hierarchy

    upstream = [cls for cls in _subclasses(IdAgentError) if cls.exit_code == 7 and cls.__module__.startswith("agent.")]
    assert upstream, "no upstream error class found"
    for cls in upstream:
        assert issubclass(cls, UpstreamError) and cls.http_status == 502, cls
