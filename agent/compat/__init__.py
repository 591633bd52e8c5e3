"""The reader-kit protocol (the Socket.IO service of the CCCD reader kits sold in
Vietnam), served by the agent so that desk software written for a kit works
unchanged: ``kit`` (the wire format), ``socketio_server`` (the Socket.IO server,
``CompatService``), ``active_auth`` (``/get_aa`` on the card still on the reader),
``webcam`` (the ``/image`` stream), ``tls`` (a self-signed pair for https)."""
