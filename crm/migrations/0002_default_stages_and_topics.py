"""Defaults every install starts with: the customer-journey stages, a deal pipeline, topics."""

import hashlib

from django.db import migrations

LIFECYCLE_STAGES = [
    ("subscriber", "Subscriber", "Gets our content; not yet showing buying interest.", False),
    ("new_lead", "New lead", "Has shown interest: a form, a guide, a sign-up.", False),
    ("engaged_lead", "Engaged lead", "Keeps engaging: repeat visits, reads, clicks.", False),
    ("opportunity", "Opportunity", "Sales is working a deal with them.", False),
    ("new_customer", "New customer", "Bought recently; onboarding.", True),
    ("active_customer", "Active customer", "Onboarded and using the product.", True),
    ("at_risk_customer", "At-risk customer", "Usage or engagement is dropping.", True),
    ("churned", "Churned", "Was a customer, no longer is.", False),
]
DEAL_STAGES = [
    ("qualification", "Qualification", 10, "open"),
    ("discovery", "Discovery", 25, "open"),
    ("proposal", "Proposal", 50, "open"),
    ("negotiation", "Negotiation", 75, "open"),
    ("won", "Closed won", 100, "won"),
    ("lost", "Closed lost", 0, "lost"),
]
TOPICS = [
    (
        "newsletter",
        "Newsletter",
        "Our monthly newsletter with guides and stories.",
        "Yes, send me the monthly newsletter. I can unsubscribe at any time.",
    ),
    (
        "product_updates",
        "Product updates",
        "New features and changes to the product.",
        "Yes, email me about new features and product changes. I can unsubscribe at any time.",
    ),
    (
        "offers",
        "Offers and events",
        "Offers, webinars and events.",
        "Yes, email me offers, webinars and event invitations. I can unsubscribe at any time.",
    ),
]


def create_defaults(apps, schema_editor):
    LifecycleStage = apps.get_model("crm", "LifecycleStage")
    DealStage = apps.get_model("crm", "DealStage")
    ConsentTopic = apps.get_model("crm", "ConsentTopic")
    ConsentText = apps.get_model("crm", "ConsentText")
    for position, (key, name, description, is_customer) in enumerate(LIFECYCLE_STAGES):
        LifecycleStage.objects.get_or_create(
            key=key,
            defaults={
                "name": name,
                "description": description,
                "position": position * 10,
                "is_customer": is_customer,
            },
        )
    for position, (key, name, probability, outcome) in enumerate(DEAL_STAGES):
        DealStage.objects.get_or_create(
            key=key,
            defaults={
                "name": name,
                "position": position * 10,
                "win_probability": probability,
                "outcome": outcome,
            },
        )
    for key, name, description, wording in TOPICS:
        topic, created = ConsentTopic.objects.get_or_create(
            key=key, defaults={"name": name, "description": description}
        )
        if created:
            ConsentText.objects.create(
                topic=topic,
                version=1,
                text=wording,
                text_sha256=hashlib.sha256(wording.encode()).hexdigest(),
            )


def remove_defaults(apps, schema_editor):
    apps.get_model("crm", "ConsentText").objects.filter(
        topic__key__in=[key for key, *_ in TOPICS]
    ).delete()
    apps.get_model("crm", "ConsentTopic").objects.filter(key__in=[k for k, *_ in TOPICS]).delete()
    apps.get_model("crm", "DealStage").objects.filter(key__in=[k for k, *_ in DEAL_STAGES]).delete()
    apps.get_model("crm", "LifecycleStage").objects.filter(
        key__in=[k for k, *_ in LIFECYCLE_STAGES]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("crm", "0001_initial")]
    operations = [migrations.RunPython(create_defaults, remove_defaults)]
