"""The portal's Celery tasks: thin, the work is in portal/access.py."""

from celery import shared_task

from . import access


@shared_task(ignore_result=True)
def send_access(contact_ids: list[int]) -> None:
    for contact_id in contact_ids:
        access.send_access(contact_id)
