"""Idempotency for every app's API and webhooks: a retried request gets the first answer
and changes nothing; a delivery without an id is known again by its payload's digest."""

import hashlib
import json
from collections.abc import Callable

from django.db import IntegrityError, transaction
from rest_framework import status
from rest_framework.response import Response

from .models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def request_fingerprint(data) -> str:
    return hashlib.sha256(
        json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


def payload_key(payload) -> str:
    """A key for a delivery whose sender gives it no id: the SHA-256 of its canonical JSON
    (keys sorted, no spaces), so the same payload re-sent, even re-serialised with other
    spacing or key order, has the same key. Prefixed so it never equals a sender's id."""
    return "sha256:" + request_fingerprint(payload)


def run_once(request, *, endpoint: str, handler: Callable[[], Response]) -> Response:
    """Run `handler` at most once per (user, endpoint, Idempotency-Key).

    1. No key: just run the handler.
    2. Insert the key's record first, inside the handler's transaction. A concurrent retry
       with the same key blocks on the unique constraint until this transaction ends; if it
       commits, the retry's insert fails and the retry replays the stored answer; if it
       rolls back, the retry runs as if it were first.
    3. Store the answer (success or client error) with the record and commit both with
       the handler's writes; a server error rolls everything back, so a retry runs again.
    4. The same key with a different body is a client bug: 422, nothing changes.
    """
    key = request.headers.get(HEADER, "").strip()
    if not key:
        return handler()
    if len(key) > MAX_KEY_LENGTH:
        return Response(
            {HEADER: [f"at most {MAX_KEY_LENGTH} characters"]}, status=status.HTTP_400_BAD_REQUEST
        )
    fingerprint = request_fingerprint(request.data)
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                user=request.user,
                endpoint=endpoint,
                key=key,
                request_sha256=fingerprint,
                response_status=0,
                response_body={},
            )
            response = handler()
            if response.status_code >= 500:
                transaction.set_rollback(True)
                return response
            record.response_status = response.status_code
            record.response_body = response.data
            record.save(update_fields=["response_status", "response_body"])
            return response
    except IntegrityError:
        pass
    record = IdempotencyRecord.objects.get(user=request.user, endpoint=endpoint, key=key)
    if record.request_sha256 != fingerprint:
        return Response(
            {HEADER: ["this key was used with a different request body"]},
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    replay = Response(record.response_body, status=record.response_status)
    replay["Idempotent-Replayed"] = "true"
    return replay
