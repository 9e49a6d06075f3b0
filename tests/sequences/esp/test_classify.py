"""Per-ESP classification from the raw event (reliability.md §3.3 and §8, 17-18)."""

import pytest

from sequences.esp.classify import classify, esp_slug, is_machine_open, sending_domain


@pytest.mark.parametrize(
    ("esp", "event_type", "reject_reason", "raw", "kind"),
    [
        (
            "amazon_ses",
            "bounced",
            "bounced",
            {"bounce": {"bounceType": "Permanent"}},
            "hard_bounce",
        ),
        (
            "amazon_ses",
            "bounced",
            "bounced",
            {"bounce": {"bounceType": "Transient"}},
            "soft_bounce",
        ),
        (
            "amazon_ses",
            "bounced",
            "bounced",
            {"bounce": {"bounceType": "Undetermined"}},
            "soft_bounce",
        ),
        ("postmark", "bounced", "bounced", {"Type": "HardBounce"}, "hard_bounce"),
        ("postmark", "bounced", "bounced", {"Type": "SoftBounce"}, "soft_bounce"),
        ("postmark", "bounced", "bounced", {"SuppressionReason": "HardBounce"}, "hard_bounce"),
        ("postmark", "deferred", None, {"Type": "Transient"}, "deferred"),
        ("mailgun", "bounced", "bounced", {"event-data": {"severity": "permanent"}}, "hard_bounce"),
        ("sendgrid", "bounced", None, {"event": "bounce", "type": "bounce"}, "hard_bounce"),
        ("sendgrid", "bounced", None, {"event": "bounce", "type": "blocked"}, "soft_bounce"),
        ("sendgrid", "deferred", None, {"event": "deferred"}, "deferred"),
        ("sendgrid", "rejected", "spam", {"event": "dropped"}, "complaint"),
        ("sendgrid", "rejected", "invalid", {"event": "dropped"}, "failed"),
        ("brevo", "bounced", "bounced", {}, "hard_bounce"),
        ("brevo", "bounced", "timed_out", {}, "soft_bounce"),
        ("postmark", "queued", None, {}, "ignored"),
    ],
)
def test_events_are_classified_per_esp(esp, event_type, reject_reason, raw, kind):
    assert classify(esp, event_type, reject_reason, raw) == kind


def test_machine_opens_are_recognised_where_the_esp_tells():
    assert is_machine_open(None, {"sg_machine_open": True})
    assert is_machine_open(None, {"event-data": {"client-info": {"bot": "apple"}}})
    assert is_machine_open("Mozilla/5.0", {})
    assert not is_machine_open("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)", {})


def test_names_and_domains():
    assert esp_slug("Amazon SES") == "amazon_ses"
    assert (
        sending_domain(
            "mailgun", {"event-data": {"message": {"headers": {"from": "A <a@Mail.Example.com>"}}}}
        )
        == "mail.example.com"
    )
    assert sending_domain("sendgrid", {}) == ""
