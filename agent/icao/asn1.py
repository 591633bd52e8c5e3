"""asn1crypto as this package uses it: what it raises on malformed DER. A module of its
own because every parser of signed structures (certificates, CMS, EF.SOD, AA answers,
the trust store) needs it and none of them should import another for it."""

from __future__ import annotations

#: what asn1crypto raises on malformed DER besides ValueError: IndexError for a BIT
#: STRING without its unused-bits byte, AttributeError for some malformed values of
#: ANY-typed fields (found by fuzz/fuzz_sod.py, issue 8)
ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError)
