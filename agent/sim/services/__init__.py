"""Stand-in servers for the services the agent forwards to, for the demo, the tests and
the benches: the BHYT gateway (``bhyt``), the HMAC-signed dossier intake (``intake``)
and the OpenCPS portal (``opencps``), on one small threaded HTTP server
(``httpserver``). Never used in production; each runs alone with ``python -m``."""
