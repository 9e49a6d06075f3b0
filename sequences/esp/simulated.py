"""A simulated ESP for the demo: accepts every message, sends nothing anywhere.

anymail's test backend with no outbox: each message gets a unique ESP message id,
the way a real ESP answers, so the demo's webhook events can name it.
"""

import uuid

from anymail.backends.test import EmailBackend as AnymailTestBackend
from anymail.message import AnymailRecipientStatus

ESP_NAME = "Demo ESP"
#: Every message id the simulated ESP hands out starts with this.
ID_PREFIX = "demo-"


class EmailBackend(AnymailTestBackend):
    esp_name = ESP_NAME

    def post_to_esp(self, payload, message):
        message.anymail_test_params = payload.get_params()
        status = AnymailRecipientStatus(message_id=f"{ID_PREFIX}{uuid.uuid4()}", status="sent")
        return {"recipient_status": dict.fromkeys(payload.recipient_emails, status)}
