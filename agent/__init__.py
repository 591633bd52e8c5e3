"""idagent: an edge agent that turns a Vietnamese chip ID card (or its QR code) into a
verified identity at a reception desk."""

__version__ = "0.1.0"
