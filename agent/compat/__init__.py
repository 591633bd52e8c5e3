"""The reader-kit protocol (the Socket.IO service of the CCCD reader kits sold in
Vietnam), served by the agent so that desk software written for a kit works
unchanged: ``kit`` (the wire format), ``service`` (the Socket.IO server), ``card``
(``/get_aa`` on the card still on the reader), ``camera`` (the ``/image`` stream)."""
