"""Crash-safe scheduled report e-mails: the period being sent, since when, and uncertain."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("reporting", "0003_dashboard")]

    operations = [
        migrations.AddField(
            model_name="scheduledreport",
            name="sending_on",
            field=models.DateField(blank=True, null=True, verbose_name="sending the report of"),
        ),
        migrations.AddField(
            model_name="scheduledreport",
            name="sending_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="sending since"),
        ),
        migrations.AddField(
            model_name="scheduledreport",
            name="uncertain_on",
            field=models.DateField(
                blank=True,
                help_text="The report of this day may or may not have gone out: check, then decide.",
                null=True,
                verbose_name="uncertain since",
            ),
        ),
    ]
