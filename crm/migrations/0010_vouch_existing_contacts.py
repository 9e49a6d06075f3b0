"""Vouch for the contacts that came from a trusted source before vouching was recorded.

Trusted: staff, imports, forms and sign-ups, the ESP, a server API key, and anyone who
granted consent. Not trusted: contacts that only a browser key ever named (a tracked
event, or identify without a server key behind it); they stay unvouched and get no
email until a trusted source vouches for them.
"""

from django.db import migrations
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

TRUSTED_SOURCES = ("", "form", "guide", "signup", "import", "admin", "esp")


def vouch_existing(apps, schema_editor):
    Contact = apps.get_model("crm", "Contact")
    ApiKey = apps.get_model("crm", "ApiKey")
    Activity = apps.get_model("crm", "Activity")
    ConsentEntry = apps.get_model("crm", "ConsentEntry")
    labels = {"server": [], "browser": []}
    for kind, prefix in ApiKey.objects.values_list("kind", "prefix"):
        labels.setdefault(kind, []).append(f"api:{prefix}")
    by_server = Exists(
        Activity.objects.filter(contact=OuterRef("pk"), source__in=labels["server"])
    )
    by_browser = Exists(
        Activity.objects.filter(contact=OuterRef("pk"), source__in=labels["browser"])
    )
    granted = Exists(ConsentEntry.objects.filter(contact=OuterRef("pk"), is_granted=True))
    trusted = (
        Q(source__in=TRUSTED_SOURCES)
        | Q(granted)
        | Q(by_server)
        # POST /contacts/ needs a server key; identify (source "api") may have been a browser's.
        | (Q(source="api") & ~Q(by_browser))
    )
    Contact.objects.filter(vouched_at__isnull=True).filter(trusted).update(
        vouched_at=timezone.now(), vouched_by="existing"
    )


class Migration(migrations.Migration):
    dependencies = [("crm", "0009_contact_vouched")]

    operations = [migrations.RunPython(vouch_existing, migrations.RunPython.noop)]
