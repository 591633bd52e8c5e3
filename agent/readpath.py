"""The one read/verify path: every option of a chip read, built from the config once.

``idagent read``, the daemon (``idagent run``) and the local API (which reads through
the daemon) all read a chip through ``ChipReader``; none of them calls
``agent.icao.read.read_chip`` with its own choice of options. ``ReadOptions`` names
every option the config gives a read: the ``[card]`` and ``[readers]`` read options and
every ``[trust]`` option (``csca_dir``, ``check_crl``, ``require_chip_auth``,
``accepted_issuers``). A new
option is added here, in one place, and reaches all three entry points.

Keys are tried in order by ``read_first``: a key the chip refuses
(``AccessDeniedError``, by class) moves on to the next one.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import ConfigError
from agent.icao.chip_read import ChipRead
from agent.icao.file_reader import ProgressCallback
from agent.icao.keys import AccessKey
from agent.icao.read import read_chip
from agent.icao.sm import AccessDeniedError
from agent.icao.trust import TrustStore
from agent.readers.apdu import ApduChannel
from agent.readers.base import CardConnection, ReaderBackend

if TYPE_CHECKING:
    from agent.config import Config

logger = logging.getLogger(__name__)


class TrustFolderError(ConfigError):
    """A trust folder named explicitly (``--trust DIR``) does not exist."""

    code = "trust_folder"
    hint = "Name an existing folder of CSCA certificates, or import a master list with idagent trust import."


@dataclass(frozen=True)
class ReadOptions:
    """Every option a chip read takes from the config."""

    skip: tuple[int, ...] = (3,)
    prefer: str = "pace"
    extended: str = "auto"
    chunk: int = 0
    no_expiry_year: int = 2099
    csca_dir: str = ""
    check_crl: bool = True
    require_chip_auth: bool = True
    #: MRZ issuing states accepted at this desk ([trust] accepted_issuers)
    accepted_issuers: tuple[str, ...] = ("VNM",)
    #: PACE MSE:Set AT carries the parameter id ([card] pace_parameter_id = "always")
    send_parameter_id: bool = True
    #: seconds per command and per read ([card] apdu_timeout, read_timeout)
    apdu_timeout: float = 5.0
    read_timeout: float = 20.0

    @classmethod
    def from_config(cls, config: Config, *, csca_dir: str | None = None) -> ReadOptions:
        """``csca_dir`` overrides ``[trust] csca_dir`` (``idagent read --trust DIR``)."""
        return cls(skip=tuple(config.card.skip_files), prefer=config.card.prefer,
                   extended=config.readers.extended_length, chunk=config.readers.read_chunk,
                   no_expiry_year=config.card.no_expiry_year,
                   csca_dir=csca_dir if csca_dir is not None else config.trust.csca_dir,
                   check_crl=config.trust.check_crl, require_chip_auth=config.trust.require_chip_auth,
                   accepted_issuers=tuple(config.trust.accepted_issuers),
                   send_parameter_id=config.card.pace_parameter_id == "always",
                   apdu_timeout=config.card.apdu_timeout, read_timeout=config.card.read_timeout)


def load_trust_store(directory: str, *, required: bool = False) -> TrustStore | None:
    """The CSCA store of ``directory``. A folder that does not exist gives None (nothing
    trusted: every card then shows "not verified", and the log says why), or a
    ``TrustFolderError`` when the folder was named explicitly (``required``)."""
    if not directory or not Path(directory).is_dir():
        if required:
            raise TrustFolderError(f"trust folder {directory} does not exist")
        logger.warning("trust folder %s does not exist: no card can be shown as verified", directory)
        return None
    return TrustStore.load(directory)


class ChipReader:
    """Open, read and verify a chip with the configured options and trust store."""

    def __init__(self, options: ReadOptions, trust: TrustStore | None, *,
                 rng: Callable[[int], bytes] = os.urandom) -> None:
        self.options = options
        self.trust = trust
        self.rng = rng

    @classmethod
    def from_config(cls, config: Config, *, csca_dir: str | None = None,
                    rng: Callable[[int], bytes] = os.urandom) -> ChipReader:
        options = ReadOptions.from_config(config, csca_dir=csca_dir)
        return cls(options, load_trust_store(options.csca_dir, required=csca_dir is not None), rng=rng)

    def read(self, connection: CardConnection, key: AccessKey, *, on_progress: ProgressCallback | None = None,
             today: dt.date | None = None, rng: Callable[[int], bytes] | None = None) -> ChipRead:
        """One read with one key; raises ``AccessDeniedError`` when the chip refuses it."""
        opts = self.options
        return read_chip(ApduChannel(connection), key, rng=rng or self.rng, trust=self.trust, skip=opts.skip,
                         on_progress=on_progress, prefer=opts.prefer, extended=opts.extended, chunk=opts.chunk,
                         today=today, no_expiry_year=opts.no_expiry_year, check_crl=opts.check_crl,
                         require_chip_auth=opts.require_chip_auth, accepted_issuers=list(opts.accepted_issuers),
                         send_parameter_id=opts.send_parameter_id, apdu_timeout=opts.apdu_timeout,
                         read_timeout=opts.read_timeout)

    def read_first(self, connection: CardConnection, keys: Sequence[AccessKey], *,
                   on_progress: ProgressCallback | None = None, today: dt.date | None = None,
                   rng: Callable[[int], bytes] | None = None) -> ChipRead:
        """Try each key in order on one connection; a refused key moves to the next one."""
        if not keys:
            raise ValueError("read_first needs at least one access key")
        last: AccessDeniedError | None = None
        for key in keys:
            try:
                return self.read(connection, key, on_progress=on_progress, today=today, rng=rng)
            except AccessDeniedError as err:
                last = err
        assert last is not None
        raise last


__all__ = ["ChipReader", "ReadOptions", "TrustFolderError", "load_trust_store"]


# -- reader backends from the config ----------------------------------------------------

def make_backend(name: str, config: Config | None = None, **options: Any) -> ReaderBackend:
    """The backend called ``name`` with the ``[readers]`` options of ``config``, which
    keyword arguments override. For "sim", ``readers.sim_profile`` (or ``sim_profile=``)
    puts that profile's virtual chip on the reader, unless a ``card`` is given."""
    from agent.readers.registry import make_backend as backend_by_name

    opts: dict[str, Any] = {}
    if config is not None:
        readers = config.readers
        opts = {"extended_length": readers.extended_length, "include": tuple(readers.include),
                "exclude": tuple(readers.exclude), "poll_interval": readers.poll_interval,
                "sim_profile": readers.sim_profile}
    opts.update(options)
    profile = opts.pop("sim_profile", "")
    if name == "sim" and opts.get("card") is None and profile:
        opts["card"] = _profile_card(str(profile))
    return backend_by_name(name, **opts)


def make_backends(config: Config) -> list[ReaderBackend]:
    return [make_backend(name, config) for name in config.readers.backends]


def _profile_card(name: str) -> Any:
    """The virtual chip of card profile ``name`` (``readers.sim_profile``). Imported
    lazily: only a configuration that names the sim backend ever loads the chip model."""
    from agent.sim.profile import ProfileError, load_profile, virtual_chip

    try:
        return virtual_chip(load_profile(name))
    except (ProfileError, OSError) as exc:
        raise ConfigError(f"readers.sim_profile {name!r}: {exc}",
                          hint="idagent sim --list shows the profiles.") from None
