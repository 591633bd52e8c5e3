"""The redaction filter: personal data never reaches a log line (brief: ID numbers,
names, MRZ lines, CAN, keys and photos)."""

from __future__ import annotations

import io
import json
import logging

import pytest

from agent.logs import forget_sensitive, register_sensitive, setup_logging

# synthetic person (domain.md sample MRZ)
ID12 = "001099012345"
CMND = "012345678"
MRZ = ["IDVNM0990123459001099012345<<0", "9903159M3903157VNM<<<<<<<<<<<0", "NGUYEN<<VAN<AN<<<<<<<<<<<<<<<<"]
NAME = "Nguyễn Văn An"
KEY = "239AB9CB282DAF66231DC5A4DF6BFBAE"


@pytest.fixture()
def log_stream():
    stream = io.StringIO()
    handler = setup_logging("DEBUG", "plain", stream)
    yield stream
    logging.getLogger().removeHandler(handler)


def test_numbers_mrz_keys_photos_are_masked(log_stream: io.StringIO) -> None:
    log = logging.getLogger("agent.test")
    log.info("id %s old %s can %s", ID12, CMND, ID12[-6:])
    for line in MRZ[:2]:
        log.warning("mrz line %s", line)
    log.debug("kseed %s", KEY)
    log.debug("photo %s", b"\xff\xd8\xff\xe0" + b"\x00" * 100)
    log.info("photo b64 %s", "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDA==")
    out = log_stream.getvalue()
    for secret in (ID12, CMND, ID12[-6:], MRZ[0], MRZ[1], KEY, "/9j/4AAQ"):
        assert secret not in out
    assert "<104 bytes>" in out
    assert out.count("[redacted]") >= 7


def test_f_string_logging_is_still_masked(log_stream: io.StringIO) -> None:
    logging.getLogger("agent.test").info(f"read card {ID12} for {MRZ[2]}")  # noqa: G004 - on purpose
    out = log_stream.getvalue()
    assert ID12 not in out and "NGUYEN<<VAN" not in out


def test_registered_names_are_masked_with_and_without_diacritics(log_stream: io.StringIO) -> None:
    register_sensitive([NAME])
    try:
        log = logging.getLogger("agent.test")
        log.info("hello %s", NAME)
        log.info("upper %s", "NGUYEN VAN AN")
        log.info("decomposed %s", "Nguyễn Văn An".encode().decode())
        log.info("Annam is a word, not the name")
    finally:
        forget_sensitive([NAME])
    logging.getLogger("agent.test").info("after forget: Nguyễn")
    out = log_stream.getvalue()
    assert "Nguyễn Văn" not in out.split("after forget")[0]
    assert "NGUYEN VAN AN" not in out
    assert "Annam is a word" in out
    assert "after forget: Nguyễn" in out


def test_exceptions_are_masked(log_stream: io.StringIO) -> None:
    try:
        raise ValueError(f"bad id {ID12}")
    except ValueError:
        logging.getLogger("agent.test").exception("failed")
    out = log_stream.getvalue()
    assert "ValueError" in out and ID12 not in out


def test_json_format_is_json_and_masked() -> None:
    stream = io.StringIO()
    handler = setup_logging("INFO", "json", stream)
    try:
        logging.getLogger("agent.test").info("id %s port %d", ID12, 8765)
    finally:
        logging.getLogger().removeHandler(handler)
    record = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert record["level"] == "INFO" and record["logger"] == "agent.test"
    assert record["message"] == "id [redacted] port 8765"


def test_third_party_loggers_pass_the_filter_too(log_stream: io.StringIO) -> None:
    logging.getLogger("urllib3.connectionpool").warning("GET /check?maThe=%s", ID12)
    assert ID12 not in log_stream.getvalue()


def test_gateway_credentials_in_a_query_string_are_masked(log_stream: io.StringIO) -> None:
    """The BHYT gateway takes its token, id_token and password in the query string
    (domain.md), and urllib3 logs the request line at DEBUG. A JWT-style token is
    base64url: its '-', '_' and '.' split it into pieces the base64 pattern misses."""
    signature = "Xk3-pQ_7vN2aL9sD-eR4tY8uI1oP_zC6bM0nV5xW2qA"  # made up, JWT-signature-shaped
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI3OTAwMV9CViJ9." + signature
    logging.getLogger("urllib3.connectionpool").debug(
        '%s "POST /api/egw/KQNhanLichSuKCB2024?token=%s&id_token=%s&username=%s&password=%s HTTP/1.1" 200 404',
        "https://gw.example", jwt, jwt, "79001_BV", "s3cret")
    out = log_stream.getvalue()
    assert "KQNhanLichSuKCB2024" in out  # the line itself is kept
    assert signature not in out and "eyJhbGciOiJIUzI1NiJ9" not in out and "s3cret" not in out
