"""The keyboard wedge: type a verified card's QR text into any desk application that
accepts a QR scanner, through a virtual keyboard (agent/wedge/wedge.py)."""
