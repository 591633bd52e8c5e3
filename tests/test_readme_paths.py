"""The README names files (the layout, "Where to find", the tables of what is not
confirmed): every ``agent/….py`` path it names exists, and every name in the "Where to
find" table is defined in the file its row names, so the table cannot rot when a
module moves (issue 15 "Done when")."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PATH_RE = re.compile(r"agent/[A-Za-z0-9_/]+\.py")
ROW_RE = re.compile(r"^\| [^|]+ \| `(agent/[^`]+\.py)` \| (.+) \|$")
NAME_RE = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")


def _where_to_find(text: str) -> list[tuple[str, list[str]]]:
    section = text.split("### Where to find", 1)[1].split("\n#", 1)[0]
    rows = []
    for line in section.splitlines():
        match = ROW_RE.match(line)
        if match:
            rows.append((match.group(1), NAME_RE.findall(match.group(2))))
    return rows


def _defines(source: str, name: str) -> bool:
    return re.search(rf"^\s*(?:async def|def|class) {name}\b|^\s*{name}\s*[:=]", source, re.M) is not None


def test_every_agent_path_in_the_readme_exists() -> None:
    named = set(PATH_RE.findall(README.read_text(encoding="utf-8")))
    assert named, "the README names no agent/ file: the pattern is wrong"
    missing = sorted(path for path in named if not (REPO / path).is_file())
    assert missing == [], f"README.md names files that do not exist: {missing}"


def test_where_to_find_names_are_defined_in_their_files() -> None:
    rows = _where_to_find(README.read_text(encoding="utf-8"))
    assert len(rows) >= 8, rows
    undefined = [(path, name) for path, names in rows for name in names
                 if not _defines((REPO / path).read_text(encoding="utf-8"), name)]
    assert undefined == [], f"not defined where the README says: {undefined}"


def test_the_checks_catch_a_stale_row(tmp_path: Path) -> None:
    text = "### Where to find\n\n| what | file | name |\n| --- | --- | --- |\n" \
           "| x | `agent/icao/select.py` | `no_such_function` |\n"
    rows = _where_to_find(text)
    assert rows == [("agent/icao/select.py", ["no_such_function"])]
    assert not _defines((REPO / "agent/icao/select.py").read_text(encoding="utf-8"), "no_such_function")
    assert not (REPO / "agent/icao/no_such_module.py").is_file()
