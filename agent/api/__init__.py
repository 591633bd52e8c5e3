"""The local API of the desk agent, for the desk's web software, and the counter page.

Quick guide for integrators (the full contract is ``GET /openapi.json``):

* Base URL ``http://127.0.0.1:8765`` (``[api] host``/``port``). Every route needs
  ``Authorization: Bearer <token>``; the token is in ``[api] token_file`` (0600).
  Browser pages must be served from an origin listed in ``[api] allowed_origins``.
* ``GET /identity`` → the identity in memory: ``identity`` (fields, ISO dates,
  ``sources``, ``conflicts`` between chip and QR), ``verification`` (``status``:
  verified / not_verified / probable_clone / error, ``reason``, ``plain``: one
  sentence in Vietnamese for the clerk), ``lookup`` (BHYT), ``photo_url``.
  ``?photo=1`` adds the JPEG as base64; ``?compat=1`` adds the reader-kit field names.
* ``POST /read`` with ``{"can": "123456"}`` (or ``id_number``, ``mrz``, or
  ``document_number`` + ``birth_date`` + ``expiry_date``) when a ``need_access`` event
  asks for it (or before the card is laid down).
* ``POST /qr`` ``{"text": ...}`` if the desk software has its own QR scanner.
* ``POST /bhyt/lookup``, ``POST /intake``, ``DELETE /identity``, ``GET /readers``,
  ``GET /health``, ``GET /metrics`` (Prometheus).
* ``POST /wedge/type`` (with ``[wedge] enabled``): type the verified card on show, as its
  7-field QR text, into the desk application's window (``[wedge] window_title``); each
  refusal types nothing and has its own ``wedge_*`` code (403/409/503); a ``wedge_result``
  event follows every attempt. ``GET /health`` → ``wedge`` says whether it is available.
* ``GET /events`` (WebSocket): send ``{"type":"auth","token":"..."}`` first (or the
  header); events are JSON objects with ``type`` (native) or, with ``?shape=compat``
  / ``[api] compat_events = true``, ``{"event": "card_data", "data": {"idCode": ...}}``.

The identity is dropped from memory when the card leaves the reader, after
``[api] identity_ttl`` seconds, on ``DELETE /identity``, or when the next card is read.
"""
