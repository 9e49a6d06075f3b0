"""Amazon SES events arrive through SNS: refuse any topic we did not subscribe to, and
any message Amazon SNS did not sign.

anymail checks basic auth and that the SNS headers match the body, but not the SNS
signature ("Future: Verify SNS message signature" in its source). AWS says to reject
any message with an unexpected TopicArn and to verify the signature; this view does
both before anything is stored or a subscription is confirmed. config/urls.py mounts
it at anymail's own SES tracking path, ahead of anymail's URLs.
"""

import base64
import binascii
import functools
import re
from urllib.parse import urlsplit

import requests
from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.webhooks.amazon_ses import AmazonSESTrackingWebhookView
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import load_pem_x509_certificate
from django.conf import settings

# Only Amazon SNS may serve the signing certificate; anything else could be an
# attacker's own key (or an internal URL we would be made to fetch).
CERT_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
# The fields AWS signs, in its documented order; Subject only when the message has one.
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
SIGNED_FIELDS["UnsubscribeConfirmation"] = SIGNED_FIELDS["SubscriptionConfirmation"]


class TopicCheckedSesTrackingView(AmazonSESTrackingWebhookView):
    def validate_request(self, request):
        # anymail calls every validate_request in the class chain (basic auth included).
        expected = settings.SES_SNS_TOPIC_ARNS
        if not expected:
            return  # production refuses to start without it (nextstep.E002)
        topic = self._parse_sns_message(request).get("TopicArn", "")
        if topic not in expected:
            raise AnymailWebhookValidationFailure(f"Unexpected SNS TopicArn {topic!r}")

    def run_validators(self, request):
        # anymail runs a subclass's validate_request before basic auth; verifying last
        # means unauthenticated posts never make us fetch a certificate.
        super().run_validators(request)
        if settings.SES_SNS_VERIFY_SIGNATURES:
            verify_signature(self._parse_sns_message(request))


def verify_signature(message: dict) -> None:
    """Raise AnymailWebhookValidationFailure unless Amazon SNS signed this message."""
    algorithm = HASHES.get(str(message.get("SignatureVersion")))
    if algorithm is None:
        raise AnymailWebhookValidationFailure("Unknown SNS SignatureVersion")
    key = signing_key(check_cert_url(message.get("SigningCertURL")))
    try:
        signature = base64.b64decode(message.get("Signature") or "", validate=True)
        key.verify(signature, canonical_string(message), padding.PKCS1v15(), algorithm())
    except (binascii.Error, TypeError, InvalidSignature) as err:  # TypeError: not a str
        raise AnymailWebhookValidationFailure("Bad SNS signature") from err


def canonical_string(message: dict) -> bytes:
    fields = SIGNED_FIELDS.get(message.get("Type"))
    if fields is None:
        raise AnymailWebhookValidationFailure("Unknown SNS message type")
    present = [name for name in fields if name != "Subject" or "Subject" in message]
    if any(name not in message for name in present):
        raise AnymailWebhookValidationFailure("SNS message lacks a signed field")
    return "".join(f"{name}\n{message[name]}\n" for name in present).encode()


def check_cert_url(url) -> str:
    # netloc, not hostname: a port or user@ part would let the URL point elsewhere.
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
    except ValueError:  # e.g. a broken [IPv6] netloc
        parts = None
    if not parts or parts.scheme != "https" or not CERT_HOST.fullmatch(parts.netloc):
        raise AnymailWebhookValidationFailure(f"Untrusted SNS SigningCertURL {url!r}")
    return url


def signing_key(url: str):
    try:
        return _fetch_key(url)
    except (requests.RequestException, ValueError) as err:
        raise AnymailWebhookValidationFailure("Cannot load the SNS certificate") from err


@functools.lru_cache(maxsize=32)
def _fetch_key(url: str):
    # AWS rotates certificates under new URLs, so one fetch per URL is enough; a failure
    # raises and is not cached.
    response = requests.get(url, timeout=5)
    response.raise_for_status()
    key = load_pem_x509_certificate(response.content).public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("SNS signs with RSA keys only")
    return key
