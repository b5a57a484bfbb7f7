"""The weekly retraining of the late-payment model (predictions.tasks.train_predictor) joins
the schedule (collections_mgmt/schedule.py); the nightly scoring runs inside the night's
chain and needs no row of its own.

Backward removes its row; the other jobs are untouched.
"""

from django.db import migrations

from collections_mgmt import schedule

RETRAIN = "Retrain the late-payment model"


def forward(apps, schema_editor):
    schedule.sync(apps)


def backward(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=RETRAIN, task="predictions.tasks.train_predictor").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("collections_mgmt", "0003_fx_rates_daily"),
        ("predictions", "0001_predictor_models"),
    ]

    operations = [migrations.RunPython(forward, backward)]
