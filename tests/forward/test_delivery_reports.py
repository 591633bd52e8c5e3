"""What the counter page's "Gửi hồ sơ" is driven by (issue 13): the receiver's receipt
number in its answer, and one delivery report per attempt from the outbox worker
(delivered with the receipt, retrying, failed for good), then a retry of a failed
dossier. Against the real local receiver over HTTP."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from forward_helpers import HMAC_KEY, person

from agent.config import Config
from agent.forward.intake import KIND, IntakeSender, IntakeSettings, enqueue_dossier, receipt_from
from agent.forward.outbox import Outbox, OutboxItemNotFound, Policy
from agent.forward.worker import DeliveryReport, ForwardingService, OutboxWorker
from agent.sim.services.intake import IntakeTestService

KEY = bytes(range(32))


@pytest.mark.parametrize(("body", "receipt"), [
    (b'{"status":"accepted","receipt":"TN-000001"}', "TN-000001"),
    (b'{"dossier_number":"000.00.01.H26-261202-0001"}', "000.00.01.H26-261202-0001"),
    (b'{"reference": 12345}', "12345"),
    (b'{"receipt":"","reference":"R-9"}', "R-9"),  # the first usable one
    (b'{"receipt": true}', None),
    (b'{"receipt":"' + b"9" * 65 + b'"}', None),  # too long to be a receipt number
    (b'{"receipt":"a\\nb"}', None),
    (b'["TN-1"]', None),
    (b"<html>ok</html>", None),
    (b"", None),
])
def test_receipt_from_a_receiver_answer(body: bytes, receipt: str | None) -> None:
    assert receipt_from(body) == receipt


def _worker(tmp_path: Path, intake: IntakeTestService, max_attempts: int = 2) -> OutboxWorker:
    outbox = Outbox(tmp_path / "outbox.sqlite3", KEY, jitter=lambda: 0.0,
                    policy=Policy(max_attempts=max_attempts, base_backoff=0.001, max_backoff=0.001))
    sender = IntakeSender(IntakeSettings(url=intake.intake_url, hmac_key=HMAC_KEY))
    return OutboxWorker(outbox, {KIND: sender}, concurrency=1)


def _run_until_idle(worker: OutboxWorker) -> None:
    import time

    for _ in range(50):
        worker._paused_until = float("-inf")  # no receiver-down pause in a unit test
        if worker.run_once() == 0 and worker.outbox.counts()["pending"] == 0:
            return
        time.sleep(0.002)


def test_reports_delivered_with_the_receivers_receipt(tmp_path: Path, intake: IntakeTestService) -> None:
    worker = _worker(tmp_path, intake)
    reports: list[DeliveryReport] = []
    worker.listeners.append(reports.append)
    settings = IntakeSettings(url=intake.intake_url, hmac_key=HMAC_KEY)
    first = enqueue_dossier(worker.outbox, person(1), settings)
    second = enqueue_dossier(worker.outbox, person(2), settings)
    _run_until_idle(worker)
    assert [(r.idem_key, r.state, r.receipt, r.attempts) for r in reports] == [
        (first, "delivered", "TN-000001", 1), (second, "delivered", "TN-000002", 1)]
    worker.outbox.close()


def test_reports_retrying_then_failed_then_retry_delivers(tmp_path: Path, intake: IntakeTestService,
                                                         hmac_key_file: Path) -> None:
    """The daemon's ForwardingService, with its worker thread: a receiver that answers
    503 makes the dossier "retrying", then "failed" after max_attempts; retry() queues
    it again and it is delivered with a receipt number."""
    config = (Config.defaults()
              .replace("intake", enabled=True, url=intake.intake_url, hmac_key_file=str(hmac_key_file))
              .replace("outbox", path=str(tmp_path / "o.sqlite3"), key_file=str(tmp_path / "o.key"),
                       max_attempts=2, base_backoff=0.01, max_backoff=0.01))
    intake.state.control({"fail_before": 1.0})
    service = ForwardingService(config)
    reports: list[DeliveryReport] = []
    changed = threading.Condition()

    def note(report: DeliveryReport) -> None:
        with changed:
            reports.append(report)
            changed.notify_all()

    def wait_for(state: str) -> None:
        with changed:
            assert changed.wait_for(lambda: bool(reports) and reports[-1].state == state, timeout=20), reports

    service.watch(note)
    service.start()
    try:
        key = service.forward(person(3))
        wait_for("failed")
        assert [(r.idem_key, r.state, r.attempts, r.error, r.receipt) for r in reports] == [
            (key, "retrying", 1, "HTTP 503", None), (key, "failed", 2, "HTTP 503", None)]
        intake.state.control({"fail_before": 0.0})
        service.retry(key)
        wait_for("delivered")
        assert (reports[-1].idem_key, reports[-1].attempts, reports[-1].receipt) == (key, 1, "TN-000001")
        with pytest.raises(OutboxItemNotFound):
            service.retry("no-such-key")
    finally:
        service.stop()


def test_a_listener_that_raises_does_not_stop_deliveries(tmp_path: Path, intake: IntakeTestService) -> None:
    worker = _worker(tmp_path, intake)

    def broken(_report: DeliveryReport) -> None:
        raise RuntimeError("listener bug")

    reports: list[DeliveryReport] = []
    worker.listeners += [broken, reports.append]
    enqueue_dossier(worker.outbox, person(4), IntakeSettings(url=intake.intake_url, hmac_key=HMAC_KEY))
    _run_until_idle(worker)
    assert [r.state for r in reports] == ["delivered"] and worker.outbox.counts()["delivered"] == 1
    worker.outbox.close()
