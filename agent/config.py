"""Configuration: one TOML file, overridden by environment variables, validated at
start.

Order of precedence: built-in defaults < the TOML file (``--config``, else
``$IDAGENT_CONFIG``, else no file) < environment variables named
``IDAGENT_<SECTION>__<KEY>`` (for example ``IDAGENT_API__PORT=9000``; lists are
comma-separated). Every error names the file (or variable), the key and what was
expected.

Why one module of ~440 lines: it is the whole schema (one small frozen dataclass a
section, each key's default and rule) and its loader; split, a newcomer would look in
several places for one key.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from agent.errors import ConfigError
from agent.logs import register_secret

ENV_PREFIX = "IDAGENT_"
ENV_CONFIG = "IDAGENT_CONFIG"


class ConfigValueError(ConfigError):
    exit_code = 3


@dataclass(frozen=True)
class AgentSection:
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["plain", "json"] = "plain"
    state_dir: str = "var"


@dataclass(frozen=True)
class ReadersSection:
    backends: list[str] = field(default_factory=lambda: ["pcsc"])
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    extended_length: Literal["auto", "on", "off"] = "auto"
    read_chunk: int = 0
    sim_profile: str = ""
    poll_interval: float = 0.5


def _issuer_code(code: str) -> bool:
    from agent.icao.issuer import alpha2

    return code == code.upper() and alpha2(code) is not None


@dataclass(frozen=True)
class CardSection:
    no_expiry_year: int = 2099
    prefer: Literal["pace", "bac"] = "pace"
    skip_files: list[int] = field(default_factory=lambda: [3])
    #: PACE MSE:Set AT: send the parameter id (DO 84) "always", or "when_ambiguous"
    pace_parameter_id: Literal["always", "when_ambiguous"] = "always"
    apdu_timeout: float = 5.0
    read_timeout: float = 20.0


@dataclass(frozen=True)
class TrustSection:
    csca_dir: str = "config/csca"
    require_chip_auth: bool = True
    check_crl: bool = True
    #: MRZ issuing states accepted at this desk (ICAO codes: "VNM", "D" for Germany)
    accepted_issuers: list[str] = field(default_factory=lambda: ["VNM"])


@dataclass(frozen=True)
class QrSection:
    camera: str = ""
    serial_port: str = ""
    serial_baud: int = 9600
    serial_terminator: Literal["CR", "CRLF", "LF"] = "CR"
    evdev_device: str = ""
    max_image_pixels: int = 40_000_000


@dataclass(frozen=True)
class BhytSection:
    enabled: bool = False
    base_url: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    password_file: str = ""
    facility_code: str = ""
    officer_name: str = ""
    officer_id: str = field(default="", repr=False)
    timeout: float = 5.0
    deadline: float = 8.0
    retries: int = 2
    breaker_threshold: int = 5
    breaker_reset: float = 30.0


INTAKE_FIELDS = [
    "id_number", "old_id_number", "full_name", "date_of_birth", "sex", "nationality",
    "ethnicity", "religion", "place_of_origin", "place_of_residence", "date_of_issue",
    "date_of_expiry",
]


@dataclass(frozen=True)
class IntakeSection:
    enabled: bool = False
    #: "generic": signed JSON to ``url``; "opencps": a dossier in an OpenCPS portal ([opencps])
    target: Literal["generic", "opencps"] = "generic"
    url: str = ""
    hmac_key_file: str = ""
    fields: list[str] = field(default_factory=lambda: list(INTAKE_FIELDS))
    include_photo: bool = False
    format: Literal["json", "fhir"] = "json"
    #: FHIR identifier system of the CCCD number (no published naming system found)
    fhir_identifier_system: str = "urn:idagent:vn:cccd"
    timeout: float = 5.0


@dataclass(frozen=True)
class OpenCpsSection:
    portal: str = ""
    api_path: str = "/o/rest/v2"
    group_id: str = ""
    username: str = ""
    password_file: str = ""
    service_code: str = ""
    gov_agency_code: str = ""
    dossier_template_no: str = ""
    originality: int = 3
    region_table: str = ""
    time_of_day: str = "00:00:00"
    timeout: float = 10.0
    settle: float = 30.0


@dataclass(frozen=True)
class WedgeSection:
    enabled: bool = False
    backend: Literal["x11", "uinput"] = "x11"
    window_title: str = ""
    display: str = ""
    hotkey: str = ""
    submit: Literal["enter", "tab", "none"] = "enter"
    settle_ms: int = 100


@dataclass(frozen=True)
class OutboxSection:
    path: str = "var/outbox.sqlite3"
    key_file: str = "var/outbox.key"
    retention_days: int = 7
    max_attempts: int = 50
    base_backoff: float = 1.0
    max_backoff: float = 300.0


@dataclass(frozen=True)
class ApiSection:
    host: str = "127.0.0.1"
    port: int = 8765
    token_file: str = "var/api.token"
    allowed_origins: list[str] = field(
        default_factory=lambda: ["http://127.0.0.1:8765", "http://localhost:8765"])
    identity_ttl: float = 120.0
    compat_events: bool = False
    #: connection limits (any local process can connect; issue 14)
    max_connections: int = 256
    max_connections_per_peer: int = 64
    unauth_idle: float = 10.0


@dataclass(frozen=True)
class MetricsSection:
    """A separate listener for the hospital's central Prometheus, with its own token."""

    enabled: bool = False
    host: str = "0.0.0.0"
    port: int = 9765
    token_file: str = "var/metrics.token"


@dataclass(frozen=True)
class CompatSection:
    """The reader-kit Socket.IO service (agent.compat): what kit desk software speaks."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    #: the webcam stream (event /image) on its own port, as the kits serve it
    camera_port: int = 9000
    #: the webcam (a device index, an image folder or a video file); "" = no webcam stream
    camera: str = ""
    #: webcam frames a second while a client is connected
    image_rate: float = 2.0
    #: Origin headers allowed on the Socket.IO handshake (a request without Origin, from
    #: a program rather than a browser, is allowed)
    allowed_origins: list[str] = field(default_factory=lambda: ["http://127.0.0.1", "http://localhost"])
    send_raw: bool = False
    send_photo: bool = True
    send_unverified: bool = False
    tls_cert: str = ""
    tls_key: str = ""


SECTIONS: dict[str, type] = {
    "agent": AgentSection, "readers": ReadersSection, "card": CardSection,
    "trust": TrustSection, "qr": QrSection, "bhyt": BhytSection, "intake": IntakeSection,
    "opencps": OpenCpsSection, "wedge": WedgeSection, "outbox": OutboxSection, "api": ApiSection,
    "compat": CompatSection, "metrics": MetricsSection,
}

#: checks beyond types: key → (predicate, what is expected)
_RULES: dict[tuple[str, str], tuple[typing.Callable[[Any], bool], str]] = {
    ("api", "port"): (lambda v: 1 <= v <= 65535, "a TCP port between 1 and 65535"),
    ("readers", "read_chunk"): (lambda v: v == 0 or 1 <= v <= 65536, "0 (adaptive) or 1..65536"),
    ("readers", "poll_interval"): (lambda v: 0.01 <= v <= 60, "seconds between 0.01 and 60"),
    ("readers", "backends"): (
        lambda v: all(b in ("pcsc", "nfc", "sim") or b.startswith(("replay:", "nfc:")) for b in v),
        'a list of "pcsc", "nfc", "nfc:<nfcpy path>", "sim", "replay:<file>"'),
    ("card", "no_expiry_year"): (lambda v: 2000 <= v <= 2199, "a year such as 2099"),
    ("card", "skip_files"): (lambda v: all(1 <= n <= 16 for n in v), "data group numbers 1..16"),
    ("trust", "accepted_issuers"): (
        lambda v: all(_issuer_code(c) for c in v),
        'ICAO issuing-state codes as the MRZ writes them, e.g. ["VNM"] or ["VNM", "D"] (D: Germany)'),
    ("card", "apdu_timeout"): (lambda v: 0.1 <= v <= 60, "seconds between 0.1 and 60"),
    ("card", "read_timeout"): (lambda v: 1 <= v <= 300, "seconds between 1 and 300"),
    ("qr", "serial_baud"): (lambda v: v in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200,
                                            230400, 460800, 921600), "a standard baud rate (9600, 115200 ...)"),
    ("qr", "max_image_pixels"): (lambda v: v >= 10_000, "at least 10000 pixels"),
    ("bhyt", "timeout"): (lambda v: 0 < v <= 120, "seconds between 0 and 120"),
    ("bhyt", "deadline"): (lambda v: 0 < v <= 300, "seconds between 0 and 300"),
    ("bhyt", "retries"): (lambda v: 0 <= v <= 10, "0..10"),
    ("bhyt", "breaker_threshold"): (lambda v: v >= 1, "at least 1"),
    ("intake", "timeout"): (lambda v: 0 < v <= 120, "seconds between 0 and 120"),
    ("intake", "fields"): (lambda v: all(f in INTAKE_FIELDS + ["document_number", "father_name",
                                                               "mother_name", "spouse_name", "identifying_marks",
                                                               "card_uuid"] for f in v),
                           "identity field names (see config/idagent.toml)"),
    ("opencps", "timeout"): (lambda v: 0 < v <= 120, "seconds between 0 and 120"),
    ("opencps", "settle"): (lambda v: 0 <= v <= 600, "seconds between 0 and 600"),
    ("opencps", "time_of_day"): (lambda v: len(v) == 8 and v[2] == v[5] == ":" and v.replace(":", "").isdigit(),
                                 "HH:mm:ss, e.g. 00:00:00"),
    ("opencps", "group_id"): (lambda v: v == "" or v.isdigit(), "the site's numeric groupId"),
    ("wedge", "settle_ms"): (lambda v: 0 <= v <= 1000, "milliseconds between 0 and 1000"),
    ("outbox", "retention_days"): (lambda v: 0 <= v <= 365, "0..365 days"),
    ("outbox", "max_attempts"): (lambda v: v >= 1, "at least 1"),
    ("api", "identity_ttl"): (lambda v: 1 <= v <= 3600, "seconds between 1 and 3600"),
    ("compat", "port"): (lambda v: 0 <= v <= 65535, "a TCP port between 1 and 65535 (0: any free port)"),
    ("compat", "camera_port"): (lambda v: 0 <= v <= 65535, "a TCP port between 1 and 65535 (0: any free port)"),
    ("compat", "image_rate"): (lambda v: 0.1 <= v <= 30, "frames a second between 0.1 and 30"),
    ("compat", "allowed_origins"): (lambda v: all(o.startswith(("http://", "https://")) for o in v),
                                    'origins such as "https://his.benhvien.vn"'),
    ("api", "max_connections"): (lambda v: 8 <= v <= 4096, "8..4096 (keep it under the unit's LimitNOFILE)"),
    ("api", "max_connections_per_peer"): (lambda v: 1 <= v <= 4096, "1..4096"),
    ("api", "unauth_idle"): (lambda v: 0.5 <= v <= 300, "seconds between 0.5 and 300"),
    ("metrics", "port"): (lambda v: 1 <= v <= 65535, "a TCP port between 1 and 65535"),
}


@dataclass(frozen=True)
class Config:
    agent: AgentSection = field(default_factory=AgentSection)
    readers: ReadersSection = field(default_factory=ReadersSection)
    card: CardSection = field(default_factory=CardSection)
    trust: TrustSection = field(default_factory=TrustSection)
    qr: QrSection = field(default_factory=QrSection)
    bhyt: BhytSection = field(default_factory=BhytSection)
    intake: IntakeSection = field(default_factory=IntakeSection)
    opencps: OpenCpsSection = field(default_factory=OpenCpsSection)
    wedge: WedgeSection = field(default_factory=WedgeSection)
    outbox: OutboxSection = field(default_factory=OutboxSection)
    api: ApiSection = field(default_factory=ApiSection)
    compat: CompatSection = field(default_factory=CompatSection)
    metrics: MetricsSection = field(default_factory=MetricsSection)
    #: where the values came from, for messages and `idagent doctor`
    source: str = "built-in defaults"

    @classmethod
    def defaults(cls) -> Config:
        return cls()

    def replace(self, section: str, **changes: Any) -> Config:
        """A copy with some keys of one section changed (validated)."""
        current = dataclasses.asdict(getattr(self, section))
        current.update(changes)
        return dataclasses.replace(self, **{section: _build_section(section, current, "<code>")})

    def bhyt_password(self) -> str:
        """The gateway password: inline, or read from ``password_file``."""
        if self.bhyt.password_file:
            path = Path(self.bhyt.password_file)
            try:
                mode = path.stat().st_mode & 0o777
                if mode & 0o077:
                    # the same rule as the outbox and intake key files: a secret readable by
                    # other users is refused, not used
                    raise ConfigValueError(
                        f"[bhyt] password_file: {path} has mode {mode:04o}; other users can read it",
                        hint=f"chmod 600 {path}")
                password = path.read_text(encoding="utf-8").strip()
                register_secret(password)
                return password
            except OSError as exc:
                raise ConfigValueError(
                    f"[bhyt] password_file: cannot read {self.bhyt.password_file}: {exc.strerror}",
                    hint="Create the file (chmod 600) or fix the path in the config.") from exc
        register_secret(self.bhyt.password)
        return self.bhyt.password


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin is list:
        return f"a list of {_type_name(get_args(tp)[0])}"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    bad = ConfigValueError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value not in get_args(tp):
            raise bad
        return value
    if origin is list:
        if not isinstance(value, list):
            raise bad
        (item,) = get_args(tp)
        return [_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise bad


def _build_section(name: str, values: Mapping[str, Any], origin: str,
                   env_vars: Mapping[str, str] | None = None) -> Any:
    cls = SECTIONS[name]
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in known:
            raise ConfigValueError(
                f"{origin}: [{name}] has no key {key!r}; known keys: {', '.join(sorted(known))}")
    kwargs = {}
    for key, value in values.items():
        where = (f"environment {env_vars[key]} ([{name}] {key})" if env_vars and key in env_vars
                 else f"{origin}: [{name}] {key}")
        kwargs[key] = _coerce(hints[key], value, where)
        rule = _RULES.get((name, key))
        if rule and not rule[0](kwargs[key]):
            raise ConfigValueError(f"{where}: expected {rule[1]}, got {value!r}")
    return cls(**kwargs)


def _env_value(tp: Any, raw: str, var: str) -> Any:
    origin = get_origin(tp)
    if origin is list:
        (item,) = get_args(tp)
        parts = [p.strip() for p in raw.split(",") if p.strip()]
        return [_env_value(item, p, var) for p in parts]
    if tp is bool:
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigValueError(f"environment {var}: expected true or false, got {raw!r}")
    if tp is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigValueError(f"environment {var}: expected an integer, got {raw!r}") from None
    if tp is float:
        try:
            return float(raw)
        except ValueError:
            raise ConfigValueError(f"environment {var}: expected a number, got {raw!r}") from None
    return raw


def load_config(path: str | os.PathLike[str] | None = None,
                env: Mapping[str, str] | None = None) -> Config:
    """Load, merge and validate. Raises ``ConfigValueError`` naming file/key."""
    env = os.environ if env is None else env
    path = path or env.get(ENV_CONFIG) or None
    data: dict[str, Any] = {}
    source = "built-in defaults"
    if path:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigValueError(f"config file {p} does not exist",
                                   hint="Pass an existing file with --config, or copy config/idagent.toml.") from None
        except OSError as exc:
            raise ConfigValueError(f"config file {p}: cannot read it ({exc.strerror})") from exc
        except UnicodeDecodeError:
            raise ConfigValueError(f"config file {p}: not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigValueError(f"config file {p}: invalid TOML: {exc}") from None
        source = str(p)
    for key, value in data.items():
        if key not in SECTIONS:
            raise ConfigValueError(f"{source}: unknown section [{key}]; known: {', '.join(SECTIONS)}")
        if not isinstance(value, dict):
            raise ConfigValueError(f"{source}: {key} must be a [section], not a value")
    sections: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        values = dict(data.get(name, {}))
        hints = typing.get_type_hints(cls)
        from_env: dict[str, str] = {}
        for f in dataclasses.fields(cls):
            var = f"{ENV_PREFIX}{name.upper()}__{f.name.upper()}"
            if var in env:
                values[f.name] = _env_value(hints[f.name], env[var], var)
                from_env[f.name] = var
        sections[name] = _build_section(name, values, source, from_env)
    return Config(**sections, source=source)
