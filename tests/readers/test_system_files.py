"""udev/60-idagent.rules and config/idagent.service: well-formed, and saying what the
deployment needs (group access, scanner symlinks, unprivileged user after pcscd)."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "udev" / "60-idagent.rules"
UNIT = ROOT / "config" / "idagent.service"

# one udev key: NAME or NAME{attr}, an operator, a double-quoted value
KEY = re.compile(r'\s*([A-Z_]+(?:\{[^}]+\})?)\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(?:,|$)')
MATCH_KEYS = {"ACTION", "SUBSYSTEM", "SUBSYSTEMS", "KERNEL", "ATTR", "ATTRS", "ENV"}
ASSIGN_KEYS = {"MODE", "GROUP", "SYMLINK", "TAG", "ENV", "GOTO", "LABEL", "IMPORT"}


def rule_lines() -> list[str]:
    return [ln for ln in RULES.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def parse(line: str) -> list[tuple[str, str, str]]:
    keys: list[tuple[str, str, str]] = []
    pos = 0
    while pos < len(line):
        m = KEY.match(line, pos)
        assert m, f"cannot parse udev rule at {line[pos:]!r}"
        keys.append((m[1], m[2], m[3]))
        pos = m.end()
    return keys


def test_udev_rules_are_well_formed() -> None:
    labels, gotos = set(), set()
    for line in rule_lines():
        for key, op, value in parse(line):
            base = key.split("{")[0]
            assert base in MATCH_KEYS | ASSIGN_KEYS, key
            if op in ("==", "!="):
                assert base in MATCH_KEYS, f"{key} cannot be matched"
            else:
                assert base in ASSIGN_KEYS, f"{key} cannot be assigned"
            if base == "LABEL":
                labels.add(value)
            if base == "GOTO":
                gotos.add(value)
            if base in ("ATTR", "ATTRS") and key.endswith(("idVendor}", "idProduct}")):
                assert all(re.fullmatch(r"[0-9a-f]{4}", v) for v in value.split("|")), value
            if base == "MODE":
                assert value == "0660"
            if base == "GROUP":
                assert value == "idagent"
    assert gotos <= labels


def test_udev_rules_cover_the_readers_and_scanners() -> None:
    text = RULES.read_text()
    vendors = {v for line in rule_lines() for k, _op, v in parse(line) if k.endswith("idVendor}")}
    # ACS, Identiv/SCM, Sony, NXP PN533 | Honeywell, Zebra/Symbol, Newland, Datalogic
    assert {"072f", "04e6", "054c", "04cc", "0c2e", "05e0", "1eab", "05f9"} <= vendors
    assert 'ATTR{idProduct}=="06c1|06c3|02e1"' in text  # Sony RC-S380 (both ids) and RC-S330/360/370
    assert 'SYMLINK+="idagent-scanner-%n"' in text


def test_systemd_unit() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(UNIT.read_text())
    service = unit["Service"]
    assert service["User"] == "idagent" and service["ExecStart"].endswith("idagent run")
    assert "pcscd.socket" in unit["Unit"]["After"] and "pcscd.socket" in unit["Unit"]["Wants"]
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
                       "ProtectHome": "yes", "CapabilityBoundingSet": ""}.items():
        assert service[key] == value, key
    assert service["ReadWritePaths"] == "/var/lib/idagent" and service["StateDirectory"] == "idagent"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
