"""Which country issued a document, and may this desk accept it (issue 11 item 4).

The issuing state in DG1's MRZ (ICAO 9303-3 §5: three letters, "D" for Germany) must be
the country of the CSCA (and Document Signer) whose chain signed EF.SOD, named by its
ISO 3166-1 alpha-2 code in the certificates (9303-12 §7.1.1: countryName). Otherwise a
document could claim to be Vietnamese while a CSCA of another country, trusted for its
own documents in a master list of ~600 anchors, vouches for it.

``[trust] accepted_issuers`` (default ["VNM"]) then says which issuing states this desk
takes at all: a genuine German passport verifies, but is not accepted at a Vietnamese
commune counter unless the operator lists "D".
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.errors import ParseError
from agent.icao import tlv
from agent.icao.checks import CheckResult, Status

#: ICAO codes that are not ISO 3166-1 alpha-3 (9303-3 §5, Table "codes for nationality")
ICAO_SPECIAL: dict[str, str] = {
    "D": "DE",                       # Germany uses D in the MRZ
    "GBD": "GB", "GBN": "GB", "GBO": "GB", "GBP": "GB", "GBS": "GB",   # British nationals
    "UNO": "UN", "UNA": "UN", "UNK": "UN",   # United Nations documents (master lists: C=UN)
    "EUE": "EU",                     # European Union
    "RKS": "XK",                     # Kosovo
}

#: ISO 3166-1 alpha-3 → alpha-2 (from Debian's iso-codes 4.15, /usr/share/iso-codes/json)
ALPHA3_TO_ALPHA2: dict[str, str] = {
    "ABW": "AW", "AFG": "AF", "AGO": "AO", "AIA": "AI", "ALA": "AX", "ALB": "AL", "AND": "AD",
    "ARE": "AE", "ARG": "AR", "ARM": "AM", "ASM": "AS", "ATA": "AQ", "ATF": "TF", "ATG": "AG",
    "AUS": "AU", "AUT": "AT", "AZE": "AZ", "BDI": "BI", "BEL": "BE", "BEN": "BJ", "BES": "BQ",
    "BFA": "BF", "BGD": "BD", "BGR": "BG", "BHR": "BH", "BHS": "BS", "BIH": "BA", "BLM": "BL",
    "BLR": "BY", "BLZ": "BZ", "BMU": "BM", "BOL": "BO", "BRA": "BR", "BRB": "BB", "BRN": "BN",
    "BTN": "BT", "BVT": "BV", "BWA": "BW", "CAF": "CF", "CAN": "CA", "CCK": "CC", "CHE": "CH",
    "CHL": "CL", "CHN": "CN", "CIV": "CI", "CMR": "CM", "COD": "CD", "COG": "CG", "COK": "CK",
    "COL": "CO", "COM": "KM", "CPV": "CV", "CRI": "CR", "CUB": "CU", "CUW": "CW", "CXR": "CX",
    "CYM": "KY", "CYP": "CY", "CZE": "CZ", "DEU": "DE", "DJI": "DJ", "DMA": "DM", "DNK": "DK",
    "DOM": "DO", "DZA": "DZ", "ECU": "EC", "EGY": "EG", "ERI": "ER", "ESH": "EH", "ESP": "ES",
    "EST": "EE", "ETH": "ET", "FIN": "FI", "FJI": "FJ", "FLK": "FK", "FRA": "FR", "FRO": "FO",
    "FSM": "FM", "GAB": "GA", "GBR": "GB", "GEO": "GE", "GGY": "GG", "GHA": "GH", "GIB": "GI",
    "GIN": "GN", "GLP": "GP", "GMB": "GM", "GNB": "GW", "GNQ": "GQ", "GRC": "GR", "GRD": "GD",
    "GRL": "GL", "GTM": "GT", "GUF": "GF", "GUM": "GU", "GUY": "GY", "HKG": "HK", "HMD": "HM",
    "HND": "HN", "HRV": "HR", "HTI": "HT", "HUN": "HU", "IDN": "ID", "IMN": "IM", "IND": "IN",
    "IOT": "IO", "IRL": "IE", "IRN": "IR", "IRQ": "IQ", "ISL": "IS", "ISR": "IL", "ITA": "IT",
    "JAM": "JM", "JEY": "JE", "JOR": "JO", "JPN": "JP", "KAZ": "KZ", "KEN": "KE", "KGZ": "KG",
    "KHM": "KH", "KIR": "KI", "KNA": "KN", "KOR": "KR", "KWT": "KW", "LAO": "LA", "LBN": "LB",
    "LBR": "LR", "LBY": "LY", "LCA": "LC", "LIE": "LI", "LKA": "LK", "LSO": "LS", "LTU": "LT",
    "LUX": "LU", "LVA": "LV", "MAC": "MO", "MAF": "MF", "MAR": "MA", "MCO": "MC", "MDA": "MD",
    "MDG": "MG", "MDV": "MV", "MEX": "MX", "MHL": "MH", "MKD": "MK", "MLI": "ML", "MLT": "MT",
    "MMR": "MM", "MNE": "ME", "MNG": "MN", "MNP": "MP", "MOZ": "MZ", "MRT": "MR", "MSR": "MS",
    "MTQ": "MQ", "MUS": "MU", "MWI": "MW", "MYS": "MY", "MYT": "YT", "NAM": "NA", "NCL": "NC",
    "NER": "NE", "NFK": "NF", "NGA": "NG", "NIC": "NI", "NIU": "NU", "NLD": "NL", "NOR": "NO",
    "NPL": "NP", "NRU": "NR", "NZL": "NZ", "OMN": "OM", "PAK": "PK", "PAN": "PA", "PCN": "PN",
    "PER": "PE", "PHL": "PH", "PLW": "PW", "PNG": "PG", "POL": "PL", "PRI": "PR", "PRK": "KP",
    "PRT": "PT", "PRY": "PY", "PSE": "PS", "PYF": "PF", "QAT": "QA", "REU": "RE", "ROU": "RO",
    "RUS": "RU", "RWA": "RW", "SAU": "SA", "SDN": "SD", "SEN": "SN", "SGP": "SG", "SGS": "GS",
    "SHN": "SH", "SJM": "SJ", "SLB": "SB", "SLE": "SL", "SLV": "SV", "SMR": "SM", "SOM": "SO",
    "SPM": "PM", "SRB": "RS", "SSD": "SS", "STP": "ST", "SUR": "SR", "SVK": "SK", "SVN": "SI",
    "SWE": "SE", "SWZ": "SZ", "SXM": "SX", "SYC": "SC", "SYR": "SY", "TCA": "TC", "TCD": "TD",
    "TGO": "TG", "THA": "TH", "TJK": "TJ", "TKL": "TK", "TKM": "TM", "TLS": "TL", "TON": "TO",
    "TTO": "TT", "TUN": "TN", "TUR": "TR", "TUV": "TV", "TWN": "TW", "TZA": "TZ", "UGA": "UG",
    "UKR": "UA", "UMI": "UM", "URY": "UY", "USA": "US", "UZB": "UZ", "VAT": "VA", "VCT": "VC",
    "VEN": "VE", "VGB": "VG", "VIR": "VI", "VNM": "VN", "VUT": "VU", "WLF": "WF", "WSM": "WS",
    "YEM": "YE", "ZAF": "ZA", "ZMB": "ZM", "ZWE": "ZW",
}


def alpha2(code: str) -> str | None:
    """The certificate country (alpha-2) of an MRZ issuing state, or None if unknown."""
    code = code.replace("<", "").upper()
    return ICAO_SPECIAL.get(code) or ALPHA3_TO_ALPHA2.get(code)


def issuing_state(dg1: bytes | None) -> str | None:
    """The issuing state of DG1's MRZ (characters 3-5 of line 1 for TD1, TD2 and TD3),
    without fillers; None when DG1 is absent or has no MRZ."""
    if not dg1:
        return None
    try:
        root = tlv.parse_file(dg1, 0x61, source="DG1")
        text = root.child(0x5F1F).value.decode("ascii")
    except (ParseError, UnicodeDecodeError):  # a malformed DG1 is reported by its own parser
        return None
    state = text[2:5].replace("<", "")
    return state or None


def check_issuer(dg1: bytes | None, signer_country: str, csca_country: str,
                 accepted: Sequence[str] | None) -> CheckResult:
    """Compare DG1's issuing state with the signing chain's countries, then with the
    accepted issuers. VALID, INVALID (mismatch: the data do not hold) or NOT_CHECKED."""
    state = issuing_state(dg1)
    if state is None:
        return CheckResult.not_checked("DG1 was not read: the issuing state was not compared with the signer's")
    expected = alpha2(state)
    details = {"document_country": state, "signer_country": signer_country, "csca_country": csca_country}
    if expected is None:
        return CheckResult(Status.INVALID, f"DG1 names issuing state {state!r}, which is no ICAO country code",
                           details=details)
    for role, country in (("CSCA", csca_country), ("Document Signer", signer_country)):
        if country and country.upper() != expected:
            return CheckResult(Status.INVALID, f"DG1 says the document was issued by {state} ({expected}) but "
                                               f"EF.SOD is signed under a {role} of {country.upper()}: "
                                               "the data do not belong to that signer", details=details)
    if not csca_country:
        return CheckResult(Status.INVALID, f"the CSCA that signed this {state} document names no country",
                           details=details)
    if accepted is not None and state not in {code.upper() for code in accepted}:
        return CheckResult(Status.NOT_SUPPORTED, f"issued by {state} ({expected}), signed under its CSCA; this "
                                                 f"desk accepts documents of {', '.join(accepted) or 'no state'} "
                                                 "only ([trust] accepted_issuers)", details=details)
    return CheckResult(Status.VALID, f"issued by {state} ({expected}), signed under a CSCA of {csca_country}",
                       details=details)
