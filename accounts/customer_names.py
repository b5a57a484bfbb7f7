"""Customer names as collectors compare them: the normalised name imports match on.

"Transports Summit SA", "TRANSPORTS SUMMIT S.A." and "Transports Sümmit, sa" are one
debtor. `normalized_name` reduces a name to what stays when case, accents, punctuation,
spacing and a trailing legal form are set aside; the customer keeps it in an indexed
column (`Customer.normalized_name`, kept in step with the name by the field itself, on
every save and by the bulk writers of `accounts.bulk`), so an import finds the customer
by one index probe whatever the size of the ledger.

The legal forms are dropped only at the end of the name ("Summit SA", "Summit S.A.S.",
"Müller GmbH & Co. KG"), never inside it ("SA Breweries" keeps its "sa"), and never when
nothing else is left (a company called "AG" stays "ag").
"""

import re
import unicodedata

from django.db import models

MAX_LENGTH = 200

# Legal forms, written as their letters without dots ("S.A." reads as "sa"). Each entry
# is a sequence of words, so "Pty Ltd" or "GmbH & Co KG" go as a whole.
LEGAL_FORMS = tuple(
    tuple(form.split())
    for form in (
        # French, Belgian, Swiss, Spanish, Portuguese, Latin American
        "sa",
        "sas",
        "sasu",
        "sarl",
        "eurl",
        "snc",
        "sca",
        "scs",
        "sprl",
        "srl",
        "sl",
        "slu",
        "sa de cv",
        "lda",
        "ltda",
        # German, Austrian, Swiss
        "gmbh",
        "ag",
        "kg",
        "ohg",
        "ug",
        "kgaa",
        "gmbh and co kg",
        "gmbh and co",
        "ev",
        # English-speaking
        "ltd",
        "limited",
        "plc",
        "llc",
        "llp",
        "lp",
        "inc",
        "incorporated",
        "corp",
        "corporation",
        "co",
        "and co",
        "co ltd",
        "pty",
        "pty ltd",
        # Dutch, Belgian, Italian, Nordic, others
        "bv",
        "nv",
        "vof",
        "spa",
        "sapa",
        "scarl",
        "oy",
        "oyj",
        "ab",
        "as",
        "asa",
        "aps",
        "sro",
        "kk",
    )
)
# Longest first: "gmbh and co kg" before "kg".
LEGAL_FORMS = tuple(sorted(LEGAL_FORMS, key=len, reverse=True))

# Dots and apostrophes join the letters they separate ("S.A." -> "SA", "O'Brien" ->
# "OBrien"); any other run of non-letters, non-digits is a space.
_JOINING = re.compile("[.'\u2019`\u00b4]")
_SEPARATING = re.compile(r"[^0-9a-z]+")


def normalized_name(name: str) -> str:
    """The name as imports compare it: lower case, no accents, no punctuation, single
    spaces, no trailing legal form. "" for a name with no letters or digits."""
    text = unicodedata.normalize("NFKD", name or "")
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.casefold().replace("ß", "ss").replace("&", " and ").replace("+", " and ")
    text = _JOINING.sub("", text)
    words = _SEPARATING.sub(" ", text).split()
    while True:
        for form in LEGAL_FORMS:
            n = len(form)
            if len(words) > n and tuple(words[-n:]) == form:
                del words[-n:]
                break
        else:
            break
    return " ".join(words)[:MAX_LENGTH]


class NormalizedNameField(models.CharField):
    """The normalised form of another field of the row (`source`), kept in step whenever
    the row is saved or bulk-created, and by `accounts.bulk`'s COPY and UPDATE writers
    (which keep every field with `source` and `derive` in step)."""

    def __init__(self, *args, source: str = "name", **kwargs):
        self.source = source
        kwargs.setdefault("max_length", MAX_LENGTH)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if self.source != "name":
            kwargs["source"] = self.source
        implied = {"max_length": MAX_LENGTH, "blank": True, "default": "", "editable": False}
        for key, value in implied.items():
            if kwargs.get(key) == value:
                del kwargs[key]
        return name, path, args, kwargs

    def derive(self, source_value) -> str:
        return normalized_name(source_value or "")

    def pre_save(self, model_instance, add):
        value = self.derive(getattr(model_instance, self.source))
        setattr(model_instance, self.attname, value)
        return value
