"""The generated data set: contacts, companies, consent, deals, suppressions, handoffs,
activities over a year and the score ledger they earned, written in big raw batches.

Distributions are shaped like a B2B/B2C mix: a few countries hold most people, most
contacts are leads, activities are mostly page views and email events with a long
tail per person, scores follow the rules that match those activities. Seeded, so the
same size always gives the same data.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Callable
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection, transaction

from config.bench.bulk import NOW, Writer, analyze, next_id, reset_sequences
from crm.emails import email_hash
from crm.models import (
    Activity,
    Company,
    ConsentEntry,
    ConsentText,
    ConsentTopic,
    Contact,
    Deal,
    DealStage,
    Suppression,
)
from scoring.models import Handoff, HandoffRule, ScoreChange, ScoringRule

CHUNK = 10_000
DAY = datetime.timedelta(days=1)
COUNTRIES = {"US": 28, "DE": 14, "GB": 10, "FR": 8, "NL": 5, "CA": 5, "ES": 4, "IT": 4,
             "AT": 3, "CH": 3, "SE": 3, "AU": 3, "BR": 2, "IN": 2, "PL": 2, "": 4}  # fmt: skip
ZONES = {"US": "America/New_York", "DE": "Europe/Berlin", "GB": "Europe/London",
         "FR": "Europe/Paris", "CA": "America/Toronto", "AU": "Australia/Sydney"}  # fmt: skip
STAGES = {"subscriber": 25, "new_lead": 30, "engaged_lead": 20, "opportunity": 5,
          "new_customer": 5, "active_customer": 9, "at_risk_customer": 3, "churned": 3}  # fmt: skip
KINDS = {"page_viewed": 50, "email_sent": 10, "email_delivered": 9, "email_opened": 8,
         "email_clicked": 3, "product_viewed": 6, "form_submitted": 2, "content_downloaded": 2,
         "cart_updated": 2, "cart_abandoned": 1, "checkout_started": 1, "order_placed": 1.5,
         "demo_requested": 0.5, "signed_up": 1, "onboarding_milestone_reached": 2}  # fmt: skip
NOT_ENGAGEMENT = {"email_sent", "email_delivered", "email_bounced"}
PATHS = ["/", "/pricing", "/blog/welcome-sequence-examples", "/features/sequences",
         "/features/segments", "/guides/lifecycle-email-playbook", "/blog/win-back-emails",
         "/webinars/lifecycle-emails", "/docs/api", "/customers"]  # fmt: skip
FIRST = ["Ada", "Ben", "Cara", "Dan", "Eva", "Finn", "Gia", "Hugo", "Ines", "Jon", "Kai",
         "Lea", "Mia", "Noah", "Olga", "Paul", "Rosa", "Sven"]  # fmt: skip
LAST = ["Smith", "Mueller", "Jones", "Schmidt", "Brown", "Martin", "Garcia", "Rossi", "Novak",
        "Berg", "Lopez", "Dubois"]  # fmt: skip
#: The columns each generated model gets; every other column takes its default.
COLUMNS = {
    "contact": (Contact, ["id", "email", "first_name", "last_name", "company_id", "country",
        "country_source", "time_zone", "lifecycle_stage_id", "source", "owner_id", "lead_score",
        "last_engaged_at", "created_at", "updated_at", "vouched_at", "vouched_by"]),
    "company": (Company, ["id", "name", "domain", "country", "created_at", "updated_at"]),
    "activity": (Activity, ["id", "kind", "contact_id", "occurred_at", "recorded_at", "source",
        "properties"]),
    "score": (ScoreChange, ["contact_id", "rule_id", "activity_id", "part", "reason", "points",
        "occurred_at", "created_at"]),
    "consent": (ConsentEntry, ["contact_id", "topic_id", "is_granted", "email_at_time", "method",
        "source", "consent_text_id", "occurred_at", "recorded_at"]),
    "deal": (Deal, ["name", "contact_id", "company_id", "stage_id", "amount", "closed_at",
        "created_at", "updated_at"]),
    "suppression": (Suppression, ["email", "email_hash", "reason", "source", "created_at"]),
    "handoff": (Handoff, ["contact_id", "rule_id", "status", "score", "sla_due_at", "close_reason",
        "created_at"]),
}  # fmt: skip


def _pick(weights: dict) -> Callable[[random.Random, int], list]:
    keys, values = list(weights), list(weights.values())
    return lambda rng, k: rng.choices(keys, values, k=k)


class Generator:
    def __init__(self, contacts: int, activities_per_contact: int, seed: int = 2026):
        self.total = contacts
        self.mean = activities_per_contact
        self.rng = random.Random(seed)
        self.kinds = _pick(KINDS)
        self.countries = _pick(COUNTRIES)
        self.stages = _pick(STAGES)
        self.owners = list(
            get_user_model().objects.filter(is_staff=True).values_list("pk", flat=True)
        )
        self.topics = {t.key: t.pk for t in ConsentTopic.objects.all()}
        self.texts = {text.topic_id: text.pk for text in ConsentText.objects.order_by("version")}
        self.deal_stages = list(DealStage.objects.values_list("pk", "outcome"))
        self.handoff_rule = HandoffRule.objects.order_by("pk").values_list("pk", flat=True).first()
        self.rules = self._rules()
        self.writers = {name: Writer(model, columns) for name, (model, columns) in COLUMNS.items()}

    def _rules(self) -> dict[str, list[tuple[int, int, str]]]:
        """kind -> [(rule pk, points, path it must contain or "")] for simple engagement rules."""
        rules: dict[str, list[tuple[int, int, str]]] = {}
        active = ScoringRule.objects.filter(is_active=True, category="engagement")
        for rule in active.exclude(activity_kind=""):
            conditions = (rule.conditions or {}).get("conditions") or []
            simple = {"field": "property", "key": "path", "operator": "contains"}
            # Only "path contains …" rules can be simulated here (the tree's new words).
            if any({name: c.get(name) for name in simple} != simple for c in conditions):
                continue
            path = conditions[0]["value"] if conditions else ""
            rules.setdefault(rule.activity_kind, []).append((rule.pk, rule.points, path))
        return rules

    def run(self, progress: Callable[[str], None]) -> None:
        self.company_base = next_id(Company)
        self.companies = max(self.total // 20, 1)
        with transaction.atomic():
            self.writers["company"].write(
                (self.company_base + j, f"Company {j}", f"company{j}.example",
                 self.countries(self.rng, 1)[0], NOW, NOW)
                for j in range(self.companies)
            )  # fmt: skip
        contact_id, activity_id = next_id(Contact), next_id(Activity)
        for start in range(0, self.total, CHUNK):
            count = min(CHUNK, self.total - start)
            with transaction.atomic():
                activity_id = self._chunk(start, count, contact_id + start, activity_id)
            progress(f"{start + count:,} of {self.total:,} contacts")
        reset_sequences([Company, Contact, Activity])
        analyze()

    def _chunk(self, start: int, count: int, first_id: int, activity_id: int) -> int:
        rng, rows = self.rng, {name: [] for name in self.writers}
        countries, stages = self.countries(rng, count), self.stages(rng, count)
        for n in range(count):
            pk, i = first_id + n, start + n
            first, last = rng.choice(FIRST), rng.choice(LAST)
            company = (
                self.company_base + rng.randrange(self.companies) if rng.random() < 0.7 else None
            )
            domain = (
                f"company{company - self.company_base}.example"
                if company
                else f"mail{i % 50}.example.org"
            )
            email = f"{first}.{last}.{i}@{domain}".lower()
            created = NOW - rng.random() * 730 * DAY
            age = min((NOW - created) / DAY, 365)
            score, engaged = 0, None
            for kind in self.kinds(rng, int(rng.expovariate(1 / self.mean))):
                at = NOW - rng.random() * age * DAY
                properties = {"path": rng.choice(PATHS)} if kind == "page_viewed" else {}
                rows["activity"].append((activity_id, kind, pk, at, at, "bench", properties))
                for rule, points, path in self.rules.get(kind, ()):
                    if path in properties.get("path", ""):
                        rows["score"].append(
                            (pk, rule, activity_id, "engagement", "activity", points, at, at)
                        )
                        score += points
                if kind not in NOT_ENGAGEMENT and (engaged is None or at > engaged):
                    engaged = at
                activity_id += 1
            country = countries[n]
            owner = rng.choice(self.owners) if self.owners and rng.random() < 0.25 else None
            rows["contact"].append((pk, email, first, last, company, country,
                "declared" if country else "", ZONES.get(country, ""), stages[n],
                rng.choice(["form", "guide", "signup", "api", "import", "event"]), owner,
                score, engaged, created, max(created, engaged or created),
                created, "existing"))  # fmt: skip
            self._extras(rows, pk, email, company, stages[n], score, created)
        for name in ("contact", "consent", "deal", "suppression", "handoff", "activity", "score"):
            self.writers[name].write(rows[name])
        return activity_id

    def _extras(self, rows, pk, email, company, stage, score, created) -> None:
        rng = self.rng
        for key, share in (("newsletter", 0.55), ("offers", 0.25)):
            topic = self.topics.get(key)
            if topic is None or rng.random() >= share:
                continue
            at = created + DAY * rng.random()
            rows["consent"].append(
                (pk, topic, True, email, "form", "bench", self.texts.get(topic), at, at)
            )
            if rng.random() < 0.1:
                later = at + (NOW - at) * rng.random()
                rows["consent"].append(
                    (pk, topic, False, email, "one_click", "bench", None, later, later)
                )
        if self.deal_stages and rng.random() < 0.06:
            stage_pk, outcome = rng.choice(self.deal_stages)
            closed = created + (NOW - created) * rng.random() if outcome != "open" else None
            amount = Decimal(rng.randrange(500, 50_000))
            rows["deal"].append(
                (f"Deal {pk}", pk, company, stage_pk, amount, closed, created, created)
            )
        if rng.random() < 0.015:
            reason = rng.choice(["hard_bounce", "unsubscribed", "complaint"])
            rows["suppression"].append((email, email_hash(email), reason, "bench", created))
        if self.handoff_rule and stage in ("engaged_lead", "opportunity") and rng.random() < 0.03:
            status = rng.choice(["new", "new", "claimed", "contacted", "accepted", "recycled"])
            reason = "bench: not ready" if status == "recycled" else ""
            due = NOW + DAY * rng.random()
            rows["handoff"].append((pk, self.handoff_rule, status, score, due, reason, created))


def generate(contacts: int, activities_per_contact: int, progress) -> None:
    Generator(contacts, activities_per_contact).run(progress)
    ledgers_written()
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def ledgers_written() -> None:
    """Called after ledger rows (consent entries, score changes) were written raw.

    Nothing to do today: the current-consent projection is written by a database
    trigger on every ledger INSERT (raw COPY included), and `lead_score` is written
    with the score ledger. A projection kept in Python beside a ledger must be rebuilt
    from it here, or the bench measures an empty projection (docs/performance.md).
    """


def sendable_contacts(count: int, *, tag: str, time_zone: str) -> list[Contact]:
    """`count` new contacts who consent to the newsletter, written raw (fast at any scale)."""
    topic = ConsentTopic.objects.get(key="newsletter")
    text = ConsentText.objects.filter(topic=topic).order_by("-version").first()
    first = next_id(Contact)
    emails = [f"bench-{tag}-{first + i}@example.com" for i in range(count)]
    engaged = NOW - DAY
    with transaction.atomic():
        # Vouched as a server key would: the send gate refuses unvouched addresses.
        Writer(Contact, ["id", "email", "first_name", "time_zone", "source", "last_engaged_at",
                         "created_at", "updated_at", "vouched_at", "vouched_by"]).write(
            (first + i, email, "Bench", time_zone, "api", engaged, NOW - 30 * DAY, NOW,
             NOW - 30 * DAY, "server_key")
            for i, email in enumerate(emails)
        )  # fmt: skip
        Writer(ConsentEntry, COLUMNS["consent"][1]).write(
            (first + i, topic.pk, True, email, "form", "bench", text.pk if text else None,
             NOW - 29 * DAY, NOW - 29 * DAY)
            for i, email in enumerate(emails)
        )  # fmt: skip
        reset_sequences([Contact])
    ledgers_written()
    return list(Contact.objects.filter(pk__gte=first, pk__lt=first + count).order_by("pk"))
