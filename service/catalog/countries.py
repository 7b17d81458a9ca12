"""The countries GADM 4.1 publishes one GeoPackage for, by their GID_0 (ISO 3166-1
alpha-3, plus GADM's own X.. codes for areas ISO does not list).

Kept here, not fetched at run time, so that a mistyped code is a usage error before
anything is enqueued, with the closest codes suggested (:func:`check`). Taken from
GADM's country list (gadm.org/download_country.html); GADM's disputed areas Z01-Z09
come inside the files of the countries that claim them.
"""

from __future__ import annotations

import difflib

from service.errors import ConfigError

#: GID_0 of every per-country file, in GADM's order (by English name).
CODES: tuple[str, ...] = (
    "AFG", "XAD", "ALA", "ALB", "DZA", "ASM", "AND", "AGO", "AIA", "ATA", "ATG", "ARG", "ARM",
    "ABW", "AUS", "AUT", "AZE", "BHS", "BHR", "BGD", "BRB", "BLR", "BEL", "BLZ", "BEN", "BMU",
    "BTN", "BOL", "BES", "BIH", "BWA", "BVT", "BRA", "IOT", "VGB", "BRN", "BGR", "BFA", "BDI",
    "KHM", "CMR", "CAN", "CPV", "XCA", "CYM", "CAF", "TCD", "CHL", "CHN", "CXR", "XCL", "CCK",
    "COL", "COM", "COK", "CRI", "CIV", "HRV", "CUB", "CUW", "CYP", "CZE", "COD", "DNK", "DJI",
    "DMA", "DOM", "ECU", "EGY", "SLV", "GNQ", "ERI", "EST", "ETH", "FLK", "FRO", "FJI", "FIN",
    "FRA", "GUF", "PYF", "ATF", "GAB", "GMB", "GEO", "DEU", "GHA", "GIB", "GRC", "GRL", "GRD",
    "GLP", "GUM", "GTM", "GGY", "GIN", "GNB", "GUY", "HTI", "HMD", "HND", "HKG", "HUN", "ISL",
    "IND", "IDN", "IRN", "IRQ", "IRL", "IMN", "ISR", "ITA", "JAM", "JPN", "JEY", "JOR", "KAZ",
    "KEN", "KIR", "XKO", "KWT", "KGZ", "LAO", "LVA", "LBN", "LSO", "LBR", "LBY", "LIE", "LTU",
    "LUX", "MAC", "MKD", "MDG", "MWI", "MYS", "MDV", "MLI", "MLT", "MHL", "MTQ", "MRT", "MUS",
    "MYT", "MEX", "FSM", "MDA", "MCO", "MNG", "MNE", "MSR", "MAR", "MOZ", "MMR", "NAM", "NRU",
    "NPL", "NLD", "NCL", "NZL", "NIC", "NER", "NGA", "NIU", "NFK", "PRK", "XNC", "MNP", "NOR",
    "OMN", "PAK", "PLW", "PSE", "PAN", "PNG", "PRY", "PER", "PHL", "PCN", "POL", "PRT", "PRI",
    "QAT", "COG", "REU", "ROU", "RUS", "RWA", "BLM", "MAF", "SHN", "KNA", "LCA", "SPM", "VCT",
    "WSM", "SMR", "STP", "SAU", "SEN", "SRB", "SYC", "SLE", "SGP", "SXM", "SVK", "SVN", "SLB",
    "SOM", "ZAF", "SGS", "KOR", "SSD", "ESP", "XPI", "XSP", "LKA", "SDN", "SUR", "SJM", "SWZ",
    "SWE", "CHE", "SYR", "TWN", "TJK", "TZA", "THA", "TLS", "TGO", "TKL", "TON", "TTO", "TUN",
    "TUR", "TKM", "TCA", "TUV", "UGA", "UKR", "ARE", "GBR", "USA", "UMI", "URY", "UZB", "VUT",
    "VAT", "VEN", "VNM", "VIR", "WLF", "ESH", "YEM", "ZMB", "ZWE",
)


def check(requested: list[str], known: tuple[str, ...] = CODES) -> tuple[str, ...]:
    """The codes upper-cased, in order, without repeats; one not ``known`` is a usage error
    that names the closest known codes."""
    codes = tuple(dict.fromkeys(code.strip().upper() for code in requested if code.strip()))
    for code in codes:
        if code not in known:
            close = difflib.get_close_matches(code, known, n=3, cutoff=0.3)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            raise ConfigError(f"unknown country code {code!r} in --countries",
                              dataset="gadm",
                              hint=f"{hint}use GADM's three-letter GID_0 codes, e.g. NPL,DZA "
                                   "(GADM's list: https://gadm.org/download_country.html)")
    return codes
