"""Where each customer's time zone came from; customers left on UTC get an inferred zone."""

from django.db import migrations, models

from accounts import timezones


def fill(apps, schema_editor):
    """Customers left on UTC (the old default for rows without a zone) get an inferred one.

    One UPDATE per country; US customers with a postal address are read in chunks for
    their state and ZIP. A customer on any other zone keeps it, as given.
    """
    Customer = apps.get_model("accounts", "Customer")
    on_utc = Customer.objects.filter(timezone="UTC")
    countries = set(on_utc.order_by().values_list("country", flat=True).distinct())
    for country in sorted(countries):
        rows = on_utc.filter(country=country)
        if country.strip().upper() in timezones.REGIONS:
            addressed = rows.exclude(postal_address="").only("pk", "country", "postal_address")
            changed = []
            for customer in addressed.iterator(chunk_size=2000):
                found = timezones.infer(country, postal_address=customer.postal_address)
                customer.timezone, customer.timezone_source = found.zone, found.source
                customer.timezone_region = found.region
                changed.append(customer)
                if len(changed) >= 2000:
                    _save(Customer, changed)
            _save(Customer, changed)
            rows = rows.filter(postal_address="")
        found = timezones.infer(country)
        rows.update(timezone=found.zone, timezone_source=found.source, timezone_region=found.region)


def _save(Customer, changed: list) -> None:
    fields = ["timezone", "timezone_source", "timezone_region"]
    Customer.objects.bulk_update(changed, fields, batch_size=1000)
    changed.clear()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0025_access_log"),
    ]

    operations = [
        migrations.AddField(
            model_name="customer",
            name="timezone_region",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="The region the zone was inferred from, e.g. US-TX.",
                max_length=10,
                verbose_name="time zone region",
            ),
        ),
        migrations.AddField(
            model_name="customer",
            name="timezone_source",
            field=models.CharField(
                choices=[
                    ("given", "given"),
                    ("region", "inferred from region or postal code"),
                    ("country", "inferred from country"),
                    ("ambiguous", "ambiguous: hours allowed in every zone of the place"),
                    ("default", "UTC by default: no country"),
                ],
                db_default="given",
                default="given",
                max_length=10,
                verbose_name="time zone source",
            ),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
