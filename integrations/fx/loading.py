"""Load the ECB's reference rates into accounts.FxRate: from a file, a URL, or the schedule.

`load_rates` is the one write: it runs in one transaction, adds the days it did not have,
corrects a rate the file says differently (the ECB does not revise, but a wrong file
loaded by hand can be loaded again right) and leaves the rest alone, so loading the same
file twice, or the daily file every day, changes nothing the second time. The command
`load_fx_rates` and the daily task `integrations.tasks.load_fx_rates` call it.
"""

from dataclasses import dataclass
from pathlib import Path

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import FxRate

from . import ecb

BATCH = 2000


@dataclass(frozen=True)
class LoadResult:
    source: str
    days: int
    first_on: object  # dt.date | None
    last_on: object
    created: int
    updated: int
    unchanged: int
    not_available: int
    skipped_currencies: tuple[str, ...]

    def describe(self) -> str:
        if not self.days:
            return _("%(source)s: no rates in the file.") % {"source": self.source}
        text = _(
            "%(source)s: %(days)s day(s) of rates, %(first)s to %(last)s: %(created)s new, "
            "%(updated)s corrected, %(unchanged)s already there."
        ) % {
            "source": self.source,
            "days": self.days,
            "first": self.first_on,
            "last": self.last_on,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
        }
        if self.skipped_currencies:
            text += " " + _("Skipped (not ISO 4217 codes any more): %(codes)s.") % {
                "codes": ", ".join(self.skipped_currencies)
            }
        return text


def load_rates(*, content: bytes, source: str) -> LoadResult:
    """Parse an ECB file's bytes and store its rates; returns what changed."""
    parsed = ecb.parse(content, name=Path(source).name if "://" not in source else source)
    days = parsed.days
    created = updated = unchanged = 0
    with transaction.atomic():
        existing = {}
        if days:
            existing = {
                (currency, rate_on): (pk, rate)
                for pk, currency, rate_on, rate in FxRate.objects.filter(
                    rate_on__gte=days[0], rate_on__lte=days[-1]
                ).values_list("pk", "currency", "rate_on", "rate")
            }
        new, changed = [], []
        for line in parsed.rates:
            known = existing.get((line.currency, line.rate_on))
            if known is None:
                new.append(
                    FxRate(
                        rate_on=line.rate_on,
                        currency=line.currency,
                        rate=line.rate,
                        source=source[:200],
                    )
                )
            elif known[1] != line.rate:
                changed.append(FxRate(pk=known[0], rate=line.rate, source=source[:200]))
            else:
                unchanged += 1
        # A load running at the same moment may have added some: theirs stand, ours skip.
        FxRate.objects.bulk_create(new, batch_size=BATCH, ignore_conflicts=True)
        FxRate.objects.bulk_update(changed, ["rate", "source"], batch_size=BATCH)
        created, updated = len(new), len(changed)
    return LoadResult(
        source=source,
        days=len(days),
        first_on=days[0] if days else None,
        last_on=days[-1] if days else None,
        created=created,
        updated=updated,
        unchanged=unchanged,
        not_available=parsed.skipped_not_available,
        skipped_currencies=tuple(sorted(parsed.skipped_currencies)),
    )


def load_file(path: str | Path) -> LoadResult:
    path = Path(path)
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ValidationError(
            _("%(path)s cannot be read: %(error)s") % {"path": path, "error": exc.strerror}
        ) from exc
    return load_rates(content=content, source=str(path))


def fetch(url: str) -> bytes:
    """The file at `url` (http, https, or file:// for a local mirror), at most
    FX_RATES_MAX_BYTES, within FX_RATES_TIMEOUT_SECONDS."""
    limit = settings.FX_RATES_MAX_BYTES
    if url.startswith("file://"):
        try:
            with open(url.removeprefix("file://"), "rb") as file:
                content = file.read(limit + 1)
        except OSError as exc:
            raise ValidationError(
                _("%(url)s cannot be read: %(error)s") % {"url": url, "error": exc.strerror}
            ) from exc
    elif url.startswith(("https://", "http://")):
        try:
            with requests.get(
                url, stream=True, timeout=settings.FX_RATES_TIMEOUT_SECONDS
            ) as response:
                response.raise_for_status()
                content = b""
                for chunk in response.iter_content(64 * 1024):
                    content += chunk
                    if len(content) > limit:
                        break
        except requests.RequestException as exc:
            raise ValidationError(
                _("%(url)s could not be fetched: %(error)s") % {"url": url, "error": exc}
            ) from exc
    else:
        raise ValidationError(
            _("%(url)s: the URL must start with https://, http:// or file://.") % {"url": url}
        )
    if len(content) > limit:
        raise ValidationError(
            _("%(url)s is larger than FX_RATES_MAX_BYTES (%(limit)s bytes).")
            % {"url": url, "limit": limit}
        )
    return content


def load_url(url: str | None = None) -> LoadResult:
    """Fetch and load `url` (default: setting FX_RATES_URL, the ECB's daily file)."""
    url = url or settings.FX_RATES_URL
    return load_rates(content=fetch(url), source=url)
