"""The desk: what happens between a card (or a QR) arriving and the identity on show.

``agent.daemon.Daemon`` is only the composition root; each job is one collaborator
with a narrow interface, so each can be read, tested and replaced alone:

* ``session.IdentitySession``: the one identity on show (thread-safe), its TTL, and
  what is announced when it leaves memory;
* ``key_broker.KeyBroker``: access keys waiting for a card (one typed in, the last QR
  scan), each for ``KEY_WINDOW`` seconds;
* ``supervisor.ReaderSupervisor``: one monitor thread per reader backend, one worker
  thread per reader (a stuck reader blocks only itself);
* ``reading.CardReading``: a card read with the keys in order, its events, the QR
  merge, the identity put on show;
* ``qr_intake.QrIntake``: QR payloads from the API and the scanners/cameras, turned into keys;
* ``forwarding.ForwardOrchestrator``: BHYT lookups and intake on a bounded executor;
* ``protocol.DeskService``: the small interface (a ``typing.Protocol``) the local API
  depends on.
"""
