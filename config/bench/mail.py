"""A no-op email backend for benches: anymail's test backend that keeps no outbox.

Each accepted message gets a unique message id, and one line "recipient<TAB>time" is
appended to BENCH_MAIL_LOG, so the bench process sees when a worker handed a message
to the backend. One short write per line with O_APPEND: lines from several worker
processes never interleave.
"""

import os
import time
import uuid

from anymail.backends.test import EmailBackend as AnymailTestBackend
from anymail.message import AnymailRecipientStatus
from django.conf import settings


class EmailBackend(AnymailTestBackend):
    esp_name = "Bench"

    def post_to_esp(self, payload, message):
        message.anymail_test_params = payload.get_params()
        lines = "".join(f"{email}\t{time.time():.6f}\n" for email in payload.recipient_emails)
        fd = os.open(settings.BENCH_MAIL_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, lines.encode())
        finally:
            os.close(fd)
        status = AnymailRecipientStatus(message_id=str(uuid.uuid4()), status="sent")
        return {"recipient_status": dict.fromkeys(payload.recipient_emails, status)}
