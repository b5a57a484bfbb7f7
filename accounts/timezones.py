"""Debtors' time zones: inferred from the country, region or postal code when none is given.

`infer(country, region=..., postal_code=..., postal_address=...)` returns the zone to use,
how it was found (Customer.TimezoneSource) and, when the place is ambiguous, every zone
the debtor could be in. The contact rules (dunning.contact_rules.next_contact) allow
contact only when it is within hours in all of those zones (`contact_zones`), as
Regulation F asks when a debtor's location is unknown (12 CFR 1006.6(b)(1)(i)).

Sources: the IANA database's zone.tab (from the tzdata package) for each country's zones,
with zones that keep the same clock all year counted once (Germany's Busingen is Berlin's
time); our own tables for the regions of multi-zone countries (US states, Canadian
provinces, Australian states, Brazilian and Mexican states, Russian subjects) and for US
3-digit ZIP prefixes (split states such as Texas or Florida are told apart by ZIP where a
prefix lies in one zone). phonenumbers' time zone data would also place a number, but the
installed phonenumberslite does not ship it. A debtor in a region not in a table, or in a
split state without a ZIP, is "ambiguous": their country's (or state's) zones all apply.
"""

import datetime as dt
import functools
import importlib.resources
import re
import zoneinfo
from dataclasses import dataclass

from .models import Customer

E, C, M, P = "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"
BOISE, PHOENIX = "America/Boise", "America/Phoenix"

# The zone a multi-zone country's debtors are shown in while ambiguous (its most populous).
MAIN_ZONE = {
    "US": E,
    "CA": "America/Toronto",
    "AU": "Australia/Sydney",
    "BR": "America/Sao_Paulo",
    "MX": "America/Mexico_City",
    "RU": "Europe/Moscow",
    "ID": "Asia/Jakarta",
    "KZ": "Asia/Almaty",
    "CD": "Africa/Kinshasa",
    "AR": "America/Argentina/Buenos_Aires",
    "CL": "America/Santiago",
    "ES": "Europe/Madrid",
    "PT": "Europe/Lisbon",
    "EC": "America/Guayaquil",
    "NZ": "Pacific/Auckland",
    "MN": "Asia/Ulaanbaatar",
}

# Region (ISO 3166-2 subdivision code, without the country) -> its zone, or its zones
# (the first is shown) where the region itself spans several.
REGIONS: dict[str, dict[str, str | tuple[str, ...]]] = {
    "US": {
        **dict.fromkeys("CT DE DC GA ME MD MA NH NJ NY NC OH PA RI SC VT VA WV".split(), E),
        **dict.fromkeys("AL AR IL IA LA MN MS MO OK WI".split(), C),
        **dict.fromkeys("CO MT NM UT WY".split(), M),
        **dict.fromkeys("CA NV WA".split(), P),
        "AZ": PHOENIX,
        "HI": "Pacific/Honolulu",
        "FL": (E, C),
        "IN": ("America/Indiana/Indianapolis", C),
        "KY": (E, C),
        "MI": ("America/Detroit", "America/Menominee"),
        "TN": (C, E),
        "TX": (C, M),
        "KS": (C, M),
        "NE": (C, M),
        "ND": (C, M),
        "SD": (C, M),
        "ID": (BOISE, P),
        "OR": (P, BOISE),
        "AK": ("America/Anchorage", "America/Adak"),
        "PR": "America/Puerto_Rico",
        "VI": "America/St_Thomas",
        "GU": "Pacific/Guam",
        "MP": "Pacific/Saipan",
        "AS": "Pacific/Pago_Pago",
    },
    "CA": {
        "AB": "America/Edmonton",
        "BC": "America/Vancouver",
        "MB": "America/Winnipeg",
        "NB": "America/Moncton",
        "NL": ("America/St_Johns", "America/Goose_Bay"),
        "NS": "America/Halifax",
        "NT": "America/Edmonton",
        "NU": ("America/Iqaluit", "America/Rankin_Inlet", "America/Cambridge_Bay"),
        "ON": ("America/Toronto", "America/Winnipeg"),
        "PE": "America/Halifax",
        "QC": "America/Toronto",
        "SK": "America/Regina",
        "YT": "America/Whitehorse",
    },
    "AU": {
        "NSW": ("Australia/Sydney", "Australia/Broken_Hill"),
        "ACT": "Australia/Sydney",
        "VIC": "Australia/Melbourne",
        "QLD": "Australia/Brisbane",
        "SA": "Australia/Adelaide",
        "WA": "Australia/Perth",
        "TAS": "Australia/Hobart",
        "NT": "Australia/Darwin",
    },
    "BR": {
        **dict.fromkeys("DF ES GO MG PR RJ RS SC SP".split(), "America/Sao_Paulo"),
        **dict.fromkeys("CE MA PB PI RN".split(), "America/Fortaleza"),
        **dict.fromkeys("AL SE".split(), "America/Maceio"),
        **dict.fromkeys("AP PA".split(), "America/Belem"),
        "AC": "America/Rio_Branco",
        "AM": "America/Manaus",
        "BA": "America/Bahia",
        "MT": "America/Cuiaba",
        "MS": "America/Campo_Grande",
        "PE": "America/Recife",
        "RO": "America/Porto_Velho",
        "RR": "America/Boa_Vista",
        "TO": "America/Araguaina",
    },
    "MX": {
        **dict.fromkeys(
            "AGU CHP CMX DIF COL GRO GUA HID JAL MEX MIC MOR OAX PUE QUE SLP TAB TLA VER "
            "ZAC".split(),
            "America/Mexico_City",
        ),
        **dict.fromkeys("CAM YUC".split(), "America/Merida"),
        "DUR": "America/Monterrey",
        "BCN": "America/Tijuana",
        "BCS": "America/Mazatlan",
        "SIN": "America/Mazatlan",
        "NAY": ("America/Mazatlan", "America/Bahia_Banderas"),
        "CHH": ("America/Chihuahua", "America/Ciudad_Juarez", "America/Ojinaga"),
        "SON": "America/Hermosillo",
        "ROO": "America/Cancun",
        "COA": ("America/Monterrey", "America/Matamoros"),
        "NLE": ("America/Monterrey", "America/Matamoros"),
        "TAM": ("America/Monterrey", "America/Matamoros"),
    },
    "RU": {
        **dict.fromkeys(
            "MOW SPE AD ARK BEL BRY VLA VLG VOR IVA KB KLU KR KC KO KOS KDA KRS LEN LIP ME MO "
            "MOS MUR NEN NIZ NGR ORL PNZ PSK ROS RYA SE SMO STA TAM TVE TUL YAR DA IN CE KL "
            "TA CU KIR".split(),
            "Europe/Moscow",
        ),
        "KGD": "Europe/Kaliningrad",
        "SAM": "Europe/Samara",
        "UD": "Europe/Samara",
        "ULY": "Europe/Ulyanovsk",
        "AST": "Europe/Astrakhan",
        "SAR": "Europe/Saratov",
        **dict.fromkeys("SVE CHE PER BA ORE TYU KGN KHM YAN".split(), "Asia/Yekaterinburg"),
        "OMS": "Asia/Omsk",
        "NVS": "Asia/Novosibirsk",
        "ALT": "Asia/Barnaul",
        "AL": "Asia/Barnaul",
        "TOM": "Asia/Tomsk",
        "KEM": "Asia/Novokuznetsk",
        **dict.fromkeys("KYA KK TY".split(), "Asia/Krasnoyarsk"),
        **dict.fromkeys("IRK BU".split(), "Asia/Irkutsk"),
        "ZAB": "Asia/Chita",
        "SA": ("Asia/Yakutsk", "Asia/Vladivostok", "Asia/Srednekolymsk"),
        "AMU": "Asia/Yakutsk",
        **dict.fromkeys("PRI KHA YEV".split(), "Asia/Vladivostok"),
        "MAG": "Asia/Magadan",
        "SAK": ("Asia/Sakhalin", "Asia/Srednekolymsk"),
        "KAM": "Asia/Kamchatka",
        "CHU": "Asia/Anadyr",
    },
}

# Region names as people write them, for the countries whose rows often spell them out.
REGION_NAMES = {
    "US": {
        "alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR",
        "california": "CA", "colorado": "CO", "connecticut": "CT", "delaware": "DE",
        "district of columbia": "DC", "florida": "FL", "georgia": "GA", "hawaii": "HI",
        "idaho": "ID", "illinois": "IL", "indiana": "IN", "iowa": "IA", "kansas": "KS",
        "kentucky": "KY", "louisiana": "LA", "maine": "ME", "maryland": "MD",
        "massachusetts": "MA", "michigan": "MI", "minnesota": "MN", "mississippi": "MS",
        "missouri": "MO", "montana": "MT", "nebraska": "NE", "nevada": "NV",
        "new hampshire": "NH", "new jersey": "NJ", "new mexico": "NM", "new york": "NY",
        "north carolina": "NC", "north dakota": "ND", "ohio": "OH", "oklahoma": "OK",
        "oregon": "OR", "pennsylvania": "PA", "rhode island": "RI", "south carolina": "SC",
        "south dakota": "SD", "tennessee": "TN", "texas": "TX", "utah": "UT",
        "vermont": "VT", "virginia": "VA", "washington": "WA", "west virginia": "WV",
        "wisconsin": "WI", "wyoming": "WY", "puerto rico": "PR", "guam": "GU",
    },
    "CA": {
        "alberta": "AB", "british columbia": "BC", "manitoba": "MB", "new brunswick": "NB",
        "newfoundland and labrador": "NL", "nova scotia": "NS", "northwest territories": "NT",
        "nunavut": "NU", "ontario": "ON", "prince edward island": "PE", "quebec": "QC",
        "québec": "QC", "saskatchewan": "SK", "yukon": "YT",
    },
    "AU": {
        "new south wales": "NSW", "australian capital territory": "ACT", "victoria": "VIC",
        "queensland": "QLD", "south australia": "SA", "western australia": "WA",
        "tasmania": "TAS", "northern territory": "NT",
    },
}  # fmt: skip


def _zip_ranges(spec: str) -> dict[int, str]:
    """ "100-149 NY, 005 NY" -> {100: "NY", ..., 149: "NY", 5: "NY"}."""
    table = {}
    for part in spec.split(","):
        numbers, state = part.split()
        first, _, last = numbers.partition("-")
        for prefix in range(int(first), int(last or first) + 1):
            table[prefix] = state
    return table


# US 3-digit ZIP prefix -> state (USPS sectional centers; 090-099 are military mail).
ZIP_STATES = _zip_ranges(
    "005 NY, 006-009 PR, 010-027 MA, 028-029 RI, 030-038 NH, 039-049 ME, 050-054 VT, "
    "055 MA, 056-059 VT, 060-069 CT, 070-089 NJ, 100-149 NY, 150-196 PA, 197-199 DE, "
    "200-205 DC, 206-219 MD, 220-246 VA, 247-268 WV, 270-289 NC, 290-299 SC, 300-319 GA, "
    "320-349 FL, 350-369 AL, 370-385 TN, 386-397 MS, 398-399 GA, 400-427 KY, 430-459 OH, "
    "460-479 IN, 480-499 MI, 500-528 IA, 530-549 WI, 550-567 MN, 569 DC, 570-577 SD, "
    "580-588 ND, 590-599 MT, 600-629 IL, 630-658 MO, 660-679 KS, 680-693 NE, 700-714 LA, "
    "716-729 AR, 730-749 OK, 750-799 TX, 800-816 CO, 820-831 WY, 832-838 ID, 840-847 UT, "
    "850-865 AZ, 870-884 NM, 885 TX, 889-898 NV, 900-961 CA, 967-968 HI, 969 GU, "
    "970-979 OR, 980-994 WA, 995-999 AK"
)
# In split states, the prefixes that lie in the state's other zone; a prefix not listed
# lies in the state's first zone, except those in ZIP_SPLIT (both zones).
ZIP_OTHER_ZONE = {
    **dict.fromkeys([324, 325], C),  # Florida panhandle: Panama City, Pensacola
    **dict.fromkeys([798, 799, 885], M),  # Texas: El Paso
    **dict.fromkeys([373, 374, 376, 377, 378, 379], E),  # East Tennessee
    **dict.fromkeys([420, 421, 422, 423, 424], C),  # West Kentucky
    **dict.fromkeys([463, 464, 476, 477], C),  # Indiana: Gary, Evansville
    586: M,  # North Dakota: Dickinson
    577: M,  # South Dakota: Rapid City
    693: M,  # Nebraska: Scottsbluff, Alliance
    **dict.fromkeys([835, 838], P),  # North Idaho: Lewiston, Coeur d'Alene
    979: BOISE,  # Oregon: Malheur County
}
ZIP_SPLIT = {498, 499, 692, 677, 678}  # prefixes that straddle their state's zone line
# Canadian postal codes: the first letter is the province (P: northern Ontario, split).
CA_POSTAL = {
    "A": "NL", "B": "NS", "C": "PE", "E": "NB", "G": "QC", "H": "QC", "J": "QC",
    "K": "ON", "L": "ON", "M": "ON", "N": "ON", "P": "ON", "R": "MB", "S": "SK",
    "T": "AB", "V": "BC", "Y": "YT",
}  # fmt: skip
# Australian postcodes: the first digit is the state (2880: Broken Hill, NSW's other zone).
AU_POSTAL = {"0": "NT", "2": "NSW", "3": "VIC", "4": "QLD", "5": "SA", "6": "WA", "7": "TAS"}

_US_LINE = re.compile(r"\b([A-Z]{2})\s+(\d{5})(?:-\d{4})?\b")
_ZIP = re.compile(r"^\s*(\d{5})(?:-\d{4})?\s*$")


@dataclass(frozen=True)
class Inference:
    zone: str
    source: str  # Customer.TimezoneSource value
    region: str = ""  # "US-TX": the region the zone came from, if any
    candidates: tuple[str, ...] = ()  # every zone the debtor could be in, when ambiguous


@functools.cache
def country_zones(country: str) -> tuple[str, ...]:
    """The country's zones in the IANA zone.tab, one per distinct clock (main zone first)."""
    text = importlib.resources.files("tzdata").joinpath("zoneinfo/zone.tab").read_text()
    zones = [
        line.split("\t")[2]
        for line in text.splitlines()
        if line and not line.startswith("#") and line.split("\t")[0] == country
    ]
    main = MAIN_ZONE.get(country)
    if main in zones:
        zones.remove(main)
        zones.insert(0, main)
    return distinct_clocks(zones)


def distinct_clocks(zones) -> tuple[str, ...]:
    """Zones with a different clock at some moment of this year and next, first kept."""
    year = dt.date.today().year
    moments = [
        dt.datetime(year + y, month, 1, 12, tzinfo=dt.UTC) for y in (0, 1) for month in range(1, 13)
    ]
    seen, kept = set(), []
    for zone in zones:
        info = zoneinfo.ZoneInfo(zone)
        clock = tuple(moment.astimezone(info).utcoffset() for moment in moments)
        if clock not in seen:
            seen.add(clock)
            kept.append(zone)
    return tuple(kept)


def region_code(country: str, region: str) -> str:
    """ "TX", "US-TX", "Texas" -> "TX" (for a country with a region table), else ""."""
    text = (region or "").strip()
    if not text or country not in REGIONS:
        return ""
    code = text.upper()
    if code.startswith(f"{country}-"):
        code = code[len(country) + 1 :]
    if code in REGIONS[country]:
        return code
    return REGION_NAMES.get(country, {}).get(" ".join(text.lower().split()), "")


def _zones_of(country: str, region: str) -> tuple[str, ...]:
    zones = REGIONS[country][region]
    return (zones,) if isinstance(zones, str) else zones


def _by_postal_code(country: str, region: str, postal_code: str) -> tuple[str, str] | None:
    """(region, zone) from a postal code where it settles the zone, else None."""
    code = (postal_code or "").strip().upper()
    if country == "US" and (match := _ZIP.match(code)):
        prefix = int(match[1][:3])
        state = ZIP_STATES.get(prefix)
        if state is None or (region and state != region) or prefix in ZIP_SPLIT:
            return None
        zones = _zones_of("US", state)
        return state, ZIP_OTHER_ZONE.get(prefix, zones[0]) if len(zones) > 1 else zones[0]
    if country == "CA" and code[:1] in CA_POSTAL:
        province = CA_POSTAL[code[0]]
        zones = _zones_of("CA", province)
        if (region and province != region) or (len(zones) > 1 and code[0] == "P"):
            return None
        return province, zones[0]
    if country == "AU" and code.isdigit() and len(code) == 4 and code[0] in AU_POSTAL:
        state = AU_POSTAL[code[0]]
        if region and state != region:
            return None
        return state, "Australia/Broken_Hill" if code == "2880" else _zones_of("AU", state)[0]
    return None


def from_address(country: str, postal_address: str) -> tuple[str, str]:
    """(region, postal code) read from a US address's last lines ("Austin, TX 78701")."""
    if country != "US":
        return "", ""
    matches = _US_LINE.findall((postal_address or "").upper())
    return matches[-1] if matches else ("", "")


def infer(
    country: str, *, region: str = "", postal_code: str = "", postal_address: str = ""
) -> Inference:
    """The zone for a debtor whose row gave none, and how sure we are of it.

    1. A region (or a postal code) that lies in one zone gives that zone ("region").
    2. A country with one clock gives it ("country").
    3. Otherwise the zone is ambiguous: the candidates are the region's zones if the
       region is known, else the country's; the zone shown is the first of them.
    4. No country at all: UTC, by default.
    """
    sources = Customer.TimezoneSource
    country = (country or "").strip().upper()
    if not country:
        return Inference("UTC", sources.DEFAULT)
    code = region_code(country, region)
    if not code and not postal_code:
        code, postal_code = from_address(country, postal_address)
        code = region_code(country, code)
    found = _by_postal_code(country, code, postal_code) if postal_code else None
    if found is not None:
        return Inference(found[1], sources.REGION, f"{country}-{found[0]}")
    if code:
        zones = _zones_of(country, code)
        if len(zones) == 1:
            return Inference(zones[0], sources.REGION, f"{country}-{code}")
        return Inference(zones[0], sources.AMBIGUOUS, f"{country}-{code}", distinct_clocks(zones))
    zones = country_zones(country)
    if len(zones) == 1:
        return Inference(zones[0], sources.COUNTRY)
    if not zones:
        return Inference("UTC", sources.DEFAULT)
    return Inference(zones[0], sources.AMBIGUOUS, "", zones)


def contact_zones(customer) -> tuple[str, ...]:
    """The zones whose contact hours all apply to this customer: theirs, or every zone
    they could be in when their zone was not given and their place is ambiguous."""
    if customer.timezone_source != customer.TimezoneSource.AMBIGUOUS:
        return (customer.timezone,)
    country = (customer.country or "").upper()
    region = customer.timezone_region.partition("-")[2]
    if region and region in REGIONS.get(country, {}):
        zones = distinct_clocks(_zones_of(country, region))
    else:
        zones = country_zones(country)
    return zones or (customer.timezone,)


def assign(customer, *, is_given: bool, region: str = "", postal_code: str = "") -> None:
    """Set the customer's zone and where it came from: as given, or inferred (unsaved)."""
    if is_given:
        customer.timezone_source = customer.TimezoneSource.GIVEN
        customer.timezone_region = ""
        return
    found = infer(
        customer.country,
        region=region,
        postal_code=postal_code,
        postal_address=customer.postal_address,
    )
    customer.timezone = found.zone
    customer.timezone_source = found.source
    customer.timezone_region = found.region


def settle(values: dict, *, stored=None, region: str = "", postal_code: str = "") -> dict:
    """`values` for a customer write, with the zone's source (and zone, if inferred) added.

    A zone in `values` is given. Without one, a new customer (`stored` None) gets an
    inferred zone, and so does a stored one whose zone was inferred when the row brings
    its country, region or postal code again; a stored given zone is kept.
    """
    settled = dict(values)
    if "timezone" in settled:
        settled.update(timezone_source=Customer.TimezoneSource.GIVEN, timezone_region="")
        return settled
    if stored is not None and (
        stored.timezone_source == Customer.TimezoneSource.GIVEN
        or not (region or postal_code or "country" in settled)
    ):
        return settled
    found = infer(
        settled.get("country", getattr(stored, "country", "")),
        region=region,
        postal_code=postal_code,
        postal_address=settled.get("postal_address", getattr(stored, "postal_address", "")),
    )
    settled.update(timezone=found.zone, timezone_source=found.source, timezone_region=found.region)
    return settled
