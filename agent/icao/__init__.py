"""ICAO Doc 9303 on top of the reader interface: access control, secure messaging,
files, LDS parsing and verification. Imports no device library."""
