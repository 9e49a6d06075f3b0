"""A deterministic, realistic demo data set for trying Nextstep (`manage.py seed_demo`).

Everything goes through crm.services, so the demo exercises the paths real data
takes: stage history, the consent ledger with its wording, suppressions, deal
moves and activity batches that downstream apps' receivers react to. One fixed
random seed makes every run produce the same people, companies and deals; times
are relative to "now" so the demo always looks recent.
"""

import contextlib
import datetime
import random
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from unittest import mock

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import connection, transaction
from django.utils import timezone

from crm.models import (
    Activity,
    Company,
    ConsentEntry,
    ConsentText,
    ConsentTopic,
    Contact,
    Deal,
    DealStage,
    LifecycleStageChange,
    Note,
    Suppression,
    Tag,
    Task,
)
from crm.services import (
    ActivityInput,
    activity_record_batch,
    company_upsert,
    consent_grant,
    consent_withdraw,
    contact_upsert,
    deal_create,
    deal_move_stage,
    lifecycle_stage_change,
    note_add,
    suppression_add,
    task_complete,
    task_create,
)

SEED = 20250917
SOURCE = "demo"

#: Demo set-up other apps add (scoring rules, playbooks); see register_demo_extension.
_EXTENSIONS: dict[str, tuple[int, Callable[[], str]]] = {}
DEFAULT_CONTACTS = 300
#: Below this the funnel cannot hold every stage, deal stage and suppression reason.
MIN_CONTACTS = 40
BATCH_SIZE = 500
SITE = "https://www.nextstep.example"
APP = "https://app.nextstep.example"
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)

# --- Reference data ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Country:
    code: str
    weight: int
    time_zones: tuple[str, ...]
    language: str
    currency: str
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]


COUNTRIES = (
    Country(
        "DE", 16, ("Europe/Berlin",), "de", "EUR",
        ("Anna", "Lukas", "Sophie", "Jonas", "Lea", "Felix", "Marie", "Paul", "Hannah", "Moritz"),
        ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Wagner", "Becker", "Hoffmann",
         "Schulz", "Koch"),
    ),
    Country(
        "FR", 10, ("Europe/Paris",), "fr", "EUR",
        ("Camille", "Louis", "Chloé", "Hugo", "Manon", "Jules", "Léa", "Arthur", "Inès", "Gabriel"),
        ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
         "Moreau"),
    ),
    Country(
        "GB", 14, ("Europe/London",), "en", "GBP",
        ("Oliver", "Amelia", "Harry", "Isla", "George", "Emily", "Jack", "Olivia", "Charlie",
         "Grace"),
        ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans", "Roberts", "Walker",
         "Hughes"),
    ),
    Country(
        "US", 20,
        ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"),
        "en", "USD",
        ("James", "Emma", "Michael", "Ava", "Daniel", "Mia", "Ethan", "Harper", "Noah", "Abigail"),
        ("Johnson", "Miller", "Davis", "Garcia", "Rodriguez", "Martinez", "Anderson", "Clark",
         "Lewis", "Young"),
    ),
    Country(
        "CA", 7, ("America/Toronto", "America/Vancouver", "America/Edmonton"), "en", "CAD",
        ("Liam", "Charlotte", "Lucas", "Chloe", "Benjamin", "Florence", "William", "Maya", "Owen",
         "Zoé"),
        ("Tremblay", "Gagnon", "Roy", "Côté", "Bouchard", "Campbell", "MacDonald", "Wong", "Singh",
         "Leblanc"),
    ),
    Country(
        "NL", 8, ("Europe/Amsterdam",), "nl", "EUR",
        ("Daan", "Julia", "Sem", "Tess", "Finn", "Sanne", "Bram", "Fleur", "Jesse", "Noor"),
        ("de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Visser", "Smit",
         "Meijer", "de Boer"),
    ),
    Country(
        "ES", 7, ("Europe/Madrid",), "es", "EUR",
        ("Lucía", "Pablo", "Martina", "Alejandro", "Sofía", "Javier", "Paula", "Diego", "Carmen",
         "Álvaro"),
        ("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez",
         "Gómez", "Ruiz"),
    ),
    Country(
        "SE", 6, ("Europe/Stockholm",), "sv", "SEK",
        ("Elsa", "William", "Alice", "Oscar", "Maja", "Erik", "Astrid", "Axel", "Ebba", "Nils"),
        ("Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson",
         "Persson", "Svensson", "Lindberg"),
    ),
    Country(
        "AU", 7,
        ("Australia/Sydney", "Australia/Melbourne", "Australia/Brisbane", "Australia/Perth"),
        "en", "AUD",
        ("Jack", "Matilda", "Thomas", "Ruby", "Lachlan", "Chloe", "Cooper", "Isla", "Riley", "Zoe"),
        ("Nguyen", "Kelly", "Ryan", "Walsh", "Mitchell", "Harris", "King", "O'Brien", "Murphy",
         "Stewart"),
    ),
)  # fmt: skip
COUNTRY_BY_CODE = {country.code: country for country in COUNTRIES}
#: People who never told us where they are: no country, time zone or language.
UNKNOWN = Country(
    "", 6, ("",), "", "EUR",
    tuple(name for country in COUNTRIES for name in country.first_names[:3]),
    tuple(name for country in COUNTRIES for name in country.last_names[:3]),
)  # fmt: skip
#: Rough exchange rates from EUR, so amounts look right in each currency.
EUR_RATES = {"EUR": 1, "USD": 1.1, "GBP": 0.85, "CAD": 1.5, "SEK": 11.5, "AUD": 1.65}

#: (name, country, industry, size); the first word makes the .example domain.
COMPANIES = (
    ("Brightwave Analytics", "DE", "Software", "51-200"),
    ("Nordlicht Logistik", "DE", "Logistics", "201-1000"),
    ("Kaffeerösterei Weiss", "DE", "Retail", "11-50"),
    ("Hafenblick Hotels", "DE", "Hospitality", "51-200"),
    ("Zugspitze Sport", "DE", "E-commerce", "11-50"),
    ("Atelier Lumière", "FR", "Retail", "11-50"),
    ("Maison Verdier", "FR", "Food & beverage", "51-200"),
    ("Cobalt Conseil", "FR", "Consulting", "2-10"),
    ("Saphir Santé", "FR", "Healthcare", "201-1000"),
    ("Thistle & Pine", "GB", "Retail", "11-50"),
    ("Harbourline Media", "GB", "Media", "51-200"),
    ("Kestrel Finance", "GB", "Financial services", "201-1000"),
    ("Oakridge Learning", "GB", "Education", "51-200"),
    ("Fernhill Studio", "GB", "Agency", "2-10"),
    ("Summit Ridge Outfitters", "US", "E-commerce", "51-200"),
    ("Bluefin Software", "US", "Software", "201-1000"),
    ("Prairie Health Partners", "US", "Healthcare", "1001+"),
    ("Copperleaf Coffee", "US", "Food & beverage", "11-50"),
    ("Lantern Labs", "US", "Software", "11-50"),
    ("Redwood Freight", "US", "Logistics", "1001+"),
    ("Meridian Legal", "US", "Professional services", "51-200"),
    ("Granite Peak Realty", "US", "Real estate", "11-50"),
    ("Northern Maple Outdoors", "CA", "E-commerce", "51-200"),
    ("Tundra Analytics", "CA", "Software", "11-50"),
    ("Fleur-de-Lys Boulangerie", "CA", "Food & beverage", "2-10"),
    ("Polder Energie", "NL", "Energy", "201-1000"),
    ("Tulpveld Bloemen", "NL", "E-commerce", "11-50"),
    ("Grachten Digital", "NL", "Agency", "11-50"),
    ("Fietsfabriek Amstel", "NL", "Manufacturing", "51-200"),
    ("Olivar Alimentos", "ES", "Food & beverage", "51-200"),
    ("Costa Brava Viajes", "ES", "Travel", "11-50"),
    ("Solaria Renovables", "ES", "Energy", "201-1000"),
    ("Ibérica Moda", "ES", "Retail", "51-200"),
    ("Fjällbacka Design", "SE", "Design", "2-10"),
    ("Norrsken Software", "SE", "Software", "51-200"),
    ("Skärgård Kajak", "SE", "Retail", "2-10"),
    ("Vinterljus Media", "SE", "Media", "11-50"),
    ("Eucalypt Wellness", "AU", "Healthcare", "11-50"),
    ("Coral Coast Surf Co", "AU", "E-commerce", "11-50"),
    ("Southern Cross Logistics", "AU", "Logistics", "201-1000"),
    ("Wattle & Co", "AU", "Retail", "2-10"),
    ("Quokka Apps", "AU", "Software", "2-10"),
)
#: How many more people we know at bigger companies.
SIZE_WEIGHTS = {"1": 1, "2-10": 2, "11-50": 3, "51-200": 4, "201-1000": 5, "1001+": 6}
PERSONAL_DOMAINS = ("mail.example", "inbox.example", "post.example")
JOB_TITLES = (
    "Head of Marketing", "Marketing Manager", "Growth Lead", "CMO", "Founder", "CEO",
    "Demand Generation Manager", "Content Marketer", "Marketing Operations Manager",
    "CRM Manager", "E-commerce Manager", "VP Sales", "Sales Director", "Customer Success Lead",
    "Product Marketing Manager", "Operations Manager", "Email Marketing Specialist",
)  # fmt: skip

#: (username, first name, last name, role group)
STAFF = (
    ("demo-sales-1", "Nina", "Hartmann", "Sales"),
    ("demo-sales-2", "Marcus", "Reid", "Sales"),
    ("demo-sales-3", "Priya", "Shah", "Sales"),
    ("demo-marketing-1", "Clara", "Jensen", "Marketing"),
    ("demo-marketing-2", "Tomás", "Ortega", "Marketing"),
    ("demo-success-1", "Elena", "Rossi", "Customer success"),
)

# --- The funnel -------------------------------------------------------------------------------

SUBSCRIBER, NEW_LEAD, ENGAGED, OPPORTUNITY = "subscriber", "new_lead", "engaged_lead", "opportunity"
NEW_CUSTOMER, ACTIVE, AT_RISK, CHURNED = (
    "new_customer", "active_customer", "at_risk_customer", "churned",
)  # fmt: skip
STAGES = (SUBSCRIBER, NEW_LEAD, ENGAGED, OPPORTUNITY, NEW_CUSTOMER, ACTIVE, AT_RISK, CHURNED)
CUSTOMER_STAGES = frozenset({NEW_CUSTOMER, ACTIVE, AT_RISK, CHURNED})
#: A plausible funnel: many leads, fewer opportunities, a customer base with some churn.
STAGE_WEIGHTS = {
    SUBSCRIBER: 0.10, NEW_LEAD: 0.28, ENGAGED: 0.20, OPPORTUNITY: 0.12,
    NEW_CUSTOMER: 0.08, ACTIVE: 0.13, AT_RISK: 0.05, CHURNED: 0.04,
}  # fmt: skip
#: How many days ago people in each stage first showed up (customers have history).
FIRST_SEEN_DAYS = {
    SUBSCRIBER: (3, 89), NEW_LEAD: (1, 60), ENGAGED: (10, 80), OPPORTUNITY: (20, 85),
    NEW_CUSTOMER: (20, 60), ACTIVE: (60, 89), AT_RISK: (60, 89), CHURNED: (70, 89),
}  # fmt: skip
STAGE_REASONS = {
    NEW_LEAD: "Filled in a form",
    ENGAGED: "Score passed 30: repeat visits and downloads",
    OPPORTUNITY: "Sales accepted the handoff",
    NEW_CUSTOMER: "First order placed",
    ACTIVE: "Onboarding milestones reached",
    AT_RISK: "Logins dropped by more than half in 30 days",
    CHURNED: "Subscription cancelled at renewal",
}
#: Website sessions per person, by stage.
SESSIONS = {
    SUBSCRIBER: (1, 3), NEW_LEAD: (1, 4), ENGAGED: (3, 7), OPPORTUNITY: (4, 8),
    NEW_CUSTOMER: (3, 7), ACTIVE: (4, 9), AT_RISK: (2, 5), CHURNED: (1, 4),
}  # fmt: skip
OPEN_RATES = {
    SUBSCRIBER: 0.45, NEW_LEAD: 0.35, ENGAGED: 0.6, OPPORTUNITY: 0.55,
    NEW_CUSTOMER: 0.5, ACTIVE: 0.5, AT_RISK: 0.2, CHURNED: 0.1,
}  # fmt: skip

#: entry point: (weight, contact source, form name, landing page, UTM choices)
ENTRY_POINTS = {
    "seo-guide": (30, Contact.Source.GUIDE, "guide-download", "/guides/lifecycle-email-playbook",
                  (("google", "organic", ""), ("bing", "organic", ""),
                   ("google", "cpc", "guide-lifecycle-playbook"))),
    "pricing-page": (15, Contact.Source.FORM, "contact-sales", "/pricing",
                     (("google", "cpc", "brand-search"),
                      ("linkedin", "paid-social", "pricing-retargeting"), ("", "", ""))),
    "webinar": (15, Contact.Source.FORM, "webinar-registration", "/webinars/lifecycle-emails",
                (("linkedin", "paid-social", "webinar-lifecycle-emails"),
                 ("newsletter", "email", "webinar-invite"), ("partner", "referral", "co-host"))),
    "homepage-signup": (25, Contact.Source.SIGNUP, "signup", "/",
                        (("", "", ""), ("producthunt", "referral", "launch"),
                         ("google", "cpc", "brand-search"))),
    "import": (15, Contact.Source.IMPORT, "", "", (("", "", ""),)),
    # Only subscribers come in through the footer form.
    "newsletter-footer": (0, Contact.Source.FORM, "newsletter-footer", "/blog",
                          (("", "", ""), ("twitter", "social", "blog-share"))),
}  # fmt: skip
IMPORT_FILE = "trade-show-leads.csv"

# --- Consent and suppressions -----------------------------------------------------------------

TOPIC_KEYS = ("newsletter", "product_updates", "offers")
#: Chance each topic was granted, by stage; the rest were never asked.
GRANT_RATES = {
    SUBSCRIBER: (1.0, 0.1, 0.2), NEW_LEAD: (0.6, 0.15, 0.25), ENGAGED: (0.7, 0.3, 0.3),
    OPPORTUNITY: (0.65, 0.4, 0.3), NEW_CUSTOMER: (0.55, 0.7, 0.25), ACTIVE: (0.55, 0.75, 0.25),
    AT_RISK: (0.5, 0.7, 0.2), CHURNED: (0.4, 0.5, 0.15),
}  # fmt: skip
WITHDRAW_RATE = 0.12
IP_PREFIXES = ("192.0.2.", "198.51.100.", "203.0.113.")  # documentation ranges (RFC 5737)
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36",
)
R = Suppression.Reason
SUPPRESSION_REASONS = (
    R.HARD_BOUNCE, R.COMPLAINT, R.UNSUBSCRIBED, R.MANUAL, R.SOFT_BOUNCE, R.INACTIVE,
)  # fmt: skip
SUPPRESSION_DETAILS = {
    R.HARD_BOUNCE: "550 5.1.1 The email account that you tried to reach does not exist.",
    R.COMPLAINT: "Feedback loop report: abuse.",
    R.UNSUBSCRIBED: "One-click unsubscribe from the newsletter footer.",
    R.MANUAL: "Asked on a sales call not to get marketing email.",
    R.SOFT_BOUNCE: "Three soft bounces in a row: 452 4.2.2 mailbox full.",
    R.INACTIVE: "No opens or clicks in 80 days (sunset policy).",
}

# --- Email, web and shop content --------------------------------------------------------------


@dataclass(frozen=True)
class Campaign:
    topic: str
    key: str
    days_ago: float
    subject: str
    link: str


CAMPAIGNS = (
    Campaign("newsletter", "newsletter-01", 84, "Five welcome emails that earn a reply",
             "/blog/welcome-sequence-examples"),
    Campaign("product_updates", "product-update-01", 76, "New: branching sequences",
             "/features/sequences"),
    Campaign("newsletter", "newsletter-02", 70, "How to write a re-engagement email",
             "/blog/win-back-emails"),
    Campaign("offers", "webinar-invite", 63, "Live next week: lifecycle emails that convert",
             "/webinars/lifecycle-emails"),
    Campaign("newsletter", "newsletter-03", 56, "Double opt-in without losing sign-ups",
             "/blog/double-opt-in-explained"),
    Campaign("product_updates", "product-update-02", 47, "Segments now update in real time",
             "/features/segments"),
    Campaign("newsletter", "newsletter-04", 42, "The lifecycle email playbook, updated",
             "/guides/lifecycle-email-playbook"),
    Campaign("newsletter", "newsletter-05", 28, "What we learned from 1,000 cart emails",
             "/blog/cart-abandonment-benchmarks"),
    Campaign("offers", "annual-plan-offer", 22, "Two months free on annual plans this week",
             "/pricing"),
    Campaign("product_updates", "product-update-03", 17, "Lead scoring, now with decay",
             "/features/scoring"),
    Campaign("newsletter", "newsletter-06", 14, "Quiet hours: send when people read",
             "/blog/send-time-and-quiet-hours"),
    Campaign("newsletter", "newsletter-07", 3, "A customer story: 31% more trial conversions",
             "/customers"),
)  # fmt: skip
PAGES = (
    ("/", "Nextstep: email that follows what people do"),
    ("/pricing", "Pricing"),
    ("/features/sequences", "Behaviour-triggered sequences"),
    ("/features/segments", "Segments"),
    ("/features/scoring", "Lead scoring and sales handoff"),
    ("/customers", "Customer stories"),
    ("/integrations", "Integrations"),
    ("/blog/welcome-sequence-examples", "12 welcome sequence examples"),
    ("/blog/double-opt-in-explained", "Double opt-in, explained"),
    ("/blog/win-back-emails", "Win-back emails that work"),
    ("/guides/lifecycle-email-playbook", "The lifecycle email playbook"),
    ("/webinars/lifecycle-emails", "Webinar: lifecycle emails that convert"),
    ("/docs/getting-started", "Getting started"),
)
PAGE_TITLES = dict(PAGES) | {"/blog": "Blog"}
APP_PAGES = (
    ("/dashboard", "Dashboard"),
    ("/sequences", "Sequences"),
    ("/segments", "Segments"),
    ("/contacts", "Contacts"),
    ("/reports/funnel", "Funnel report"),
    ("/settings/team", "Team settings"),
)
REFERRERS = (
    "https://www.google.com/", "https://www.google.com/", "https://www.linkedin.com/",
    "https://duckduckgo.com/", "https://news.ycombinator.com/", "",
)  # fmt: skip
GUIDES = (
    ("lifecycle-email-playbook", "The lifecycle email playbook"),
    ("double-opt-in-checklist", "The double opt-in checklist"),
    ("win-back-templates", "10 win-back email templates"),
)
#: (product id, name, price in EUR)
PRODUCTS = (
    ("plan-starter", "Starter plan (annual)", 290),
    ("plan-growth", "Growth plan (annual)", 990),
    ("plan-scale", "Scale plan (annual)", 2990),
    ("addon-seats-5", "5 extra seats (annual)", 240),
    ("addon-onboarding", "Onboarding workshop", 450),
)
PLAN_BY_SIZE = {
    "": 0, "1": 0, "2-10": 0, "11-50": 1, "51-200": 1, "201-1000": 2, "1001+": 2,
}  # fmt: skip
MILESTONES = (
    ("account_created", "Account created"),
    ("contacts_imported", "First contacts imported"),
    ("first_sequence_live", "First sequence live"),
    ("team_invited", "Team invited"),
    ("first_report_viewed", "First funnel report viewed"),
)

# --- Deals, tasks and notes -------------------------------------------------------------------

OPEN_DEAL_STAGES = ("qualification", "discovery", "proposal", "negotiation")
LOST_REASONS = (
    "Chose a competitor on price",
    "No budget this financial year",
    "Went quiet after the proposal",
    "Decided to build it in-house",
    "Timing: revisit next quarter",
)
#: stage: [(title, due in days from now, chance it is already done)]
TASKS = {
    ENGAGED: [("Call to qualify", 2, 0.4)],
    OPPORTUNITY: [("Send the proposal", -1, 0.6), ("Follow up on the proposal", 4, 0.0)],
    NEW_CUSTOMER: [("Onboarding kick-off call", -5, 0.7)],
    ACTIVE: [("Quarterly check-in", 10, 0.0)],
    AT_RISK: [("Check in: usage has dropped", 0, 0.0)],
    CHURNED: [("Exit interview", -20, 0.8)],
}
NOTES = {
    OPPORTUNITY: (
        "Discovery call with {first}: they send {volume} emails a month by hand and want "
        "triggers from their shop. Proposal next.",
        "{first} is comparing us with two other tools; cares most about consent records.",
    ),
    NEW_CUSTOMER: ("Kick-off done with {first}. Welcome sequence goes live first.",),
    ACTIVE: ("{first} asked for a second team workspace; upsell at renewal.",),
    AT_RISK: ("Logins are down since {first}'s manager left; offered a refresher session.",),
    CHURNED: ("Cancelled at renewal: moved to their agency's tool.",),
    ENGAGED: ("Lost the deal ({reason}). Back to nurture; revisit next quarter.",),
}

# --- Public API -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoResult:
    """What demo_seed did: whether it wrote the people data, the counts, what extensions said."""

    created: bool
    counts: dict[str, int]
    extensions: tuple[str, ...] = ()


#: When an extension runs, relative to the others (lower first). History that the replays
#: must see comes first; configuration next; the replays of that history; last what
#: analyses the result (predictions).
DEMO_HISTORY, DEMO_CONFIGURATION, DEMO_REPLAY, DEMO_ANALYSIS = 10, 20, 30, 40


def register_demo_extension(
    name: str, install: Callable[[], str], *, phase: int = DEMO_CONFIGURATION
) -> None:
    """Have seed_demo also run `install` after the people data, in the same transaction.

    crm cannot import scoring or sequences, so they register what the demo needs from
    them (rules, playbooks, replays) from their AppConfig.ready(). Extensions run by
    `phase`, then in the order they were registered. `install` must be idempotent (it
    runs on every seed_demo) and returns a one-line summary.
    """
    _EXTENSIONS[name] = (phase, install)


def demo_seed(
    *, contacts: int = DEFAULT_CONTACTS, progress: Callable[[str], None] | None = None
) -> DemoResult:
    """Write the demo data set once, all or nothing; a no-op when it is already there.

    Registered extensions run every time, after the people data, so a database seeded
    before an app gained its demo set-up still gets it. `progress` hears each phase.
    """
    if contacts < MIN_CONTACTS:
        raise ValueError(f"The demo needs at least {MIN_CONTACTS} contacts.")
    say = progress or (lambda line: None)
    # One transaction: a crash leaves nothing behind, so the marker below can be trusted.
    with transaction.atomic():
        created = not demo_is_present()
        if created:
            with _timed(
                say, f"people, companies, deals and 90 days of behaviour ({contacts} contacts)"
            ):
                _Seeder(contacts=contacts).run()
        notes = []
        analysed = False
        for name, (phase, install) in sorted(_EXTENSIONS.items(), key=lambda item: item[1][0]):
            if phase >= DEMO_ANALYSIS and not analysed:
                _refresh_planner_statistics()
                analysed = True
            with _timed(say, name):
                notes.append(f"{name}: {install()}")
        _refresh_planner_statistics()
    return DemoResult(created=created, counts=demo_counts(), extensions=tuple(notes))


def _refresh_planner_statistics() -> None:
    """ANALYZE after the bulk writes (PostgreSQL): the tables grew from nothing within
    seconds, before autovacuum looks, and with the empty tables' statistics the planner
    chose nested loops that made the insights' queries run past the statement timeout.
    Inside the transaction ANALYZE samples the rows it wrote."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


@contextlib.contextmanager
def _timed(say: Callable[[str], None], phase: str) -> Iterator[None]:
    started = time.monotonic()
    say(f"{phase}…")
    yield
    say(f"  done in {time.monotonic() - started:.1f} s")


@contextlib.contextmanager
def demo_clock(at: datetime.datetime) -> Iterator[None]:
    """Run the code inside as if it were `at`.

    The demo replays its past through the real services (scoring, handoffs, the sequence
    engine, ESP webhook processing) so what the admin shows was made by the product, not
    written by hand. Every one of them reads the time from django.utils.timezone.now;
    only seed_demo ever moves it, and only inside its own transaction.
    """
    with mock.patch.object(timezone, "now", lambda: at):
        yield


def demo_is_present() -> bool:
    """Return whether seed_demo already ran here (its keyed activities exist)."""
    return Activity.objects.filter(source=SOURCE, idempotency_key__startswith="demo-").exists()


def demo_counts() -> dict[str, int]:
    """Return the row count of each model the demo fills."""
    return {
        "demo staff users": get_user_model().objects.filter(username__startswith="demo-").count(),
        "companies": Company.objects.count(),
        "contacts": Contact.objects.count(),
        "tags": Tag.objects.count(),
        "lifecycle stage changes": LifecycleStageChange.objects.count(),
        "consent entries": ConsentEntry.objects.count(),
        "suppressions": Suppression.objects.count(),
        "deals": Deal.objects.count(),
        "tasks": Task.objects.count(),
        "notes": Note.objects.count(),
        "activities": Activity.objects.count(),
    }


# --- Planning: what each person is and did ----------------------------------------------------


@dataclass
class _Staff:
    sales: list[AbstractBaseUser]
    marketing: list[AbstractBaseUser]
    success: AbstractBaseUser


@dataclass
class _Consent:
    method: str
    granted_at: datetime.datetime
    withdrawn_at: datetime.datetime | None = None
    withdraw_method: str = ConsentEntry.Method.PREFERENCE_CENTRE


@dataclass
class _Person:
    """The plan for one contact, made before anything is written."""

    email: str
    first_name: str
    last_name: str
    country: Country
    company: Company | None
    stage: str
    entry_point: str
    first_seen: datetime.datetime
    last_active: datetime.datetime
    sales_rep: AbstractBaseUser
    owner: AbstractBaseUser | None
    anonymous_id: str
    ip_address: str
    user_agent: str
    route: list[tuple[str, datetime.datetime]] = field(default_factory=list)
    consent: dict[str, _Consent] = field(default_factory=dict)
    suppression: str = ""
    trigger_campaign: str = ""
    suppressed_at: datetime.datetime | None = None
    deal_stage: str = ""
    lost_reason: str = ""
    contact: Contact | None = None

    def stage_at(self, stage: str) -> datetime.datetime | None:
        return next((at for key, at in self.route if key == stage), None)


@dataclass(frozen=True)
class _Event:
    at: datetime.datetime
    kind: str
    properties: dict
    contact_id: int | None = None
    anonymous_id: str = ""


class _Seeder:
    """Plans the demo with one seeded random generator, then writes it through the services.

    Every random draw happens in a fixed order that never depends on database ids,
    so the same seed gives the same people, companies, deals and events.
    """

    def __init__(self, *, contacts: int):
        self.rng = random.Random(SEED)
        self.now = timezone.now().replace(microsecond=0)
        self.size = contacts

    def run(self) -> None:
        staff = _staff_ensure()
        companies = self.write_companies(staff)
        people = self.plan_people(companies, staff)
        topics = {topic.key: topic for topic in ConsentTopic.objects.filter(key__in=TOPIC_KEYS)}
        texts = {key: _latest_text(topic) for key, topic in topics.items()}
        for person in people:
            self.write_contact(person, topics, texts)
        self.write_suppressions(people, staff)
        self.write_deals(people)
        self.write_work(people)
        self.write_activities(people)

    # --- small helpers

    def ago(self, days: float) -> datetime.datetime:
        return self.now - datetime.timedelta(days=days)

    def between(self, start: datetime.datetime, end: datetime.datetime) -> datetime.datetime:
        seconds = max((end - start).total_seconds(), 0)
        return start + datetime.timedelta(seconds=round(self.rng.uniform(0, seconds)))

    def minutes(self, low: float, high: float) -> datetime.timedelta:
        return datetime.timedelta(minutes=round(self.rng.uniform(low, high), 2))

    def token(self, prefix: str) -> str:
        return f"{prefix}_{self.rng.getrandbits(48):012x}"

    # --- companies and people

    def write_companies(self, staff: _Staff) -> list[Company]:
        count = min(len(COMPANIES), max(5, round(self.size / 7.5)))
        chosen = self.rng.sample(COMPANIES, count)
        return [
            company_upsert(
                name=name,
                domain=_company_domain(name),
                country=country,
                industry=industry,
                size=size,
                owner=staff.sales[index % len(staff.sales)],
            )
            for index, (name, country, industry, size) in enumerate(chosen)
        ]

    def plan_people(self, companies: list[Company], staff: _Staff) -> list[_Person]:
        stages = _quota(STAGE_WEIGHTS, self.size)
        self.rng.shuffle(stages)
        emails: set[str] = set()
        people = [
            self.plan_person(index, stage, companies, staff, emails)
            for index, stage in enumerate(stages)
        ]
        self.plan_suppressions(people)
        for person in people:
            self.plan_consent(person)
            self.plan_suppressed_at(person)
            self.plan_route(person)
        self.plan_deals(people)
        return people

    def plan_person(
        self, index: int, stage: str, companies: list[Company], staff: _Staff, emails: set[str]
    ) -> _Person:
        weights = [SIZE_WEIGHTS[company.size] for company in companies]
        company = self.rng.choices(companies, weights)[0] if self.rng.random() < 0.85 else None
        entry_point = self.pick_entry_point(stage)
        country = self.pick_country(company, entry_point)
        first, last = self.rng.choice(country.first_names), self.rng.choice(country.last_names)
        sales_rep = company.owner if company else staff.sales[index % len(staff.sales)]
        first_seen = self.ago(self.rng.uniform(*FIRST_SEEN_DAYS[stage]))
        return _Person(
            email=self.plan_email(first, last, company, emails),
            first_name=first,
            last_name=last,
            country=country,
            company=company,
            stage=stage,
            entry_point=entry_point,
            first_seen=first_seen,
            last_active=self.plan_last_active(stage),
            sales_rep=sales_rep,
            owner=_owner_for(stage, sales_rep, staff),
            anonymous_id=self.token("anon"),
            ip_address=f"{self.rng.choice(IP_PREFIXES)}{self.rng.randint(1, 254)}",
            user_agent=self.rng.choice(USER_AGENTS),
        )

    def pick_entry_point(self, stage: str) -> str:
        if stage == SUBSCRIBER:
            return self.rng.choices(("newsletter-footer", "seo-guide"), (7, 3))[0]
        names = list(ENTRY_POINTS)
        return self.rng.choices(names, [ENTRY_POINTS[name][0] for name in names])[0]

    def pick_country(self, company: Company | None, entry_point: str) -> Country:
        if entry_point == "import" and self.rng.random() < 0.3:
            return UNKNOWN  # trade-show lists rarely say where people are
        if company is not None and self.rng.random() < 0.9:
            return COUNTRY_BY_CODE[company.country]
        options = (*COUNTRIES, UNKNOWN)
        return self.rng.choices(options, [country.weight for country in options])[0]

    def plan_email(self, first: str, last: str, company: Company | None, emails: set) -> str:
        first, last = _ascii(first), _ascii(last)
        if company is not None:
            local = self.rng.choice((f"{first}.{last}", f"{first}.{last}", f"{first[0]}{last}"))
            domain = company.domain
        else:
            local = self.rng.choice((f"{first}.{last}", f"{first}{last}", f"{first}_{last}"))
            domain = self.rng.choice(PERSONAL_DOMAINS)
        email, number = f"{local}@{domain}", 2
        while email in emails:
            email, number = f"{local}{number}@{domain}", number + 1
        emails.add(email)
        return email

    def plan_last_active(self, stage: str) -> datetime.datetime:
        if stage == AT_RISK:
            return self.ago(self.rng.uniform(18, 30))
        if stage == CHURNED:
            return self.ago(self.rng.uniform(30, 45))
        return self.ago(self.rng.uniform(0.01, 0.3))

    def plan_suppressions(self, people: list[_Person]) -> None:
        per_reason = max(1, round(self.size / 100))
        candidates = [
            person for person in people if person.stage in (SUBSCRIBER, NEW_LEAD, ENGAGED)
        ]
        self.rng.shuffle(candidates)
        reasons = [reason for reason in SUPPRESSION_REASONS for _ in range(per_reason)]
        for person, reason in zip(candidates, reasons, strict=False):
            person.suppression = reason
            # Old enough to have had a few newsletters before it happened.
            person.first_seen = min(person.first_seen, self.ago(self.rng.uniform(50, 80)))
            if reason == R.INACTIVE:
                person.first_seen = self.ago(self.rng.uniform(86, 89))
                person.last_active = person.first_seen + DAY * self.rng.uniform(2, 6)

    def plan_consent(self, person: _Person) -> None:
        method = self.pick_consent_method(person)
        delay = (10, 180) if method == ConsentEntry.Method.DOUBLE_OPT_IN else (1, 5)
        for key, rate in zip(TOPIC_KEYS, GRANT_RATES[person.stage], strict=True):
            forced = key == "newsletter" and person.suppression
            if not forced and self.rng.random() >= rate:
                continue  # never asked
            consent = _Consent(method=method, granted_at=person.first_seen + self.minutes(*delay))
            room = self.now - consent.granted_at
            if not person.suppression and room > 8 * DAY and self.rng.random() < WITHDRAW_RATE:
                consent.withdrawn_at = self.between(consent.granted_at + 7 * DAY, self.now - HOUR)
            person.consent[key] = consent

    def pick_consent_method(self, person: _Person) -> str:
        if person.entry_point == "import":
            return ConsentEntry.Method.IMPORT
        # Double opt-in is the norm in Germany, a choice elsewhere.
        if person.country.code == "DE" or self.rng.random() < 0.3:
            return ConsentEntry.Method.DOUBLE_OPT_IN
        return ConsentEntry.Method.FORM

    def plan_suppressed_at(self, person: _Person) -> None:
        if not person.suppression:
            return
        granted_at = person.consent["newsletter"].granted_at
        sends = [
            campaign
            for campaign in CAMPAIGNS
            if campaign.topic == "newsletter" and self.ago(campaign.days_ago) > granted_at + DAY
        ]
        if person.suppression in (R.SOFT_BOUNCE, R.INACTIVE):
            trigger = sends[-1]  # the latest send: the third soft bounce, or the sunset run
        else:
            trigger = self.rng.choice(sends)
        person.trigger_campaign = trigger.key
        # Two hours after the send: later than any send jitter, open or complaint before it.
        person.suppressed_at = self.ago(trigger.days_ago) + 2 * HOUR
        if person.suppression in (R.UNSUBSCRIBED, R.COMPLAINT):
            method = ConsentEntry.Method.ONE_CLICK
            if person.suppression == R.COMPLAINT:
                method = ConsentEntry.Method.ESP
            for consent in person.consent.values():
                consent.withdrawn_at, consent.withdraw_method = person.suppressed_at, method

    def plan_route(self, person: _Person) -> None:
        stages = _route(
            person.stage,
            via_subscriber=person.entry_point == "newsletter-footer" or self.rng.random() < 0.15,
            self_serve=person.entry_point == "homepage-signup" and self.rng.random() < 0.6,
            via_at_risk=self.rng.random() < 0.6,
        )
        normal = [stage for stage in stages[1:] if stage not in (AT_RISK, CHURNED)]
        late = [stage for stage in stages[1:] if stage in (AT_RISK, CHURNED)]
        times = self.spread(person.first_seen + HOUR, person.last_active - HOUR, len(normal))
        times += self.spread(person.last_active + 5 * DAY, self.now - HOUR, len(late))
        person.route = [(stages[0], person.first_seen), *zip(normal + late, times, strict=True)]

    def spread(self, start: datetime.datetime, end: datetime.datetime, count: int) -> list:
        """Times in order with room between them, so no stage lasts only minutes."""
        step = (end - start) / max(count, 1)
        return [
            self.between(start + step * (i + 0.2), start + step * (i + 0.8)) for i in range(count)
        ]

    def plan_deals(self, people: list[_Person]) -> None:
        open_index = lost_index = 0
        for person in people:
            if person.stage == OPPORTUNITY:
                person.deal_stage = OPEN_DEAL_STAGES[open_index % len(OPEN_DEAL_STAGES)]
                open_index += 1
            elif person.stage in CUSTOMER_STAGES and person.stage_at(OPPORTUNITY):
                person.deal_stage = "won"
            elif person.stage == ENGAGED and not person.suppression:
                # Every third engaged lead had a deal that was lost and went back to nurture.
                person.deal_stage = "lost" if lost_index % 3 == 0 else ""
                lost_index += 1

    # --- writing contacts, consent and suppressions

    def write_contact(self, person: _Person, topics: dict, texts: dict) -> None:
        entry = ENTRY_POINTS[person.entry_point]
        utm_source, utm_medium, utm_campaign = self.rng.choice(entry[4])
        person.contact = contact_upsert(
            email=person.email,
            first_name=person.first_name,
            last_name=person.last_name,
            company=person.company,
            job_title=self.rng.choice(JOB_TITLES) if person.company else "",
            phone=self.plan_phone(person),
            country=person.country.code,
            country_source=_country_source(person),
            time_zone=self.rng.choice(person.country.time_zones),
            language=person.country.language,
            owner=person.owner,
            source=entry[1],
            # Demo people stand for sign-ups and imports a real install would have vouched.
            vouched_by=Contact.VouchedBy.EXISTING,
            entry_point=person.entry_point,
            utm_source=utm_source,
            utm_medium=utm_medium,
            utm_campaign=utm_campaign,
            lifecycle_stage=person.route[0][0],
            properties=self.plan_properties(person),
            tags=self.plan_tags(person),
        ).contact
        self.write_route(person)
        self.write_consent(person, topics, texts)

    def plan_phone(self, person: _Person) -> str:
        """Fictional numbers only (the ranges set aside for drama), for people sales talks to."""
        if person.stage in (SUBSCRIBER, NEW_LEAD) or person.company is None:
            return ""
        number = self.rng.randint(0, 99)
        return {
            "US": f"+1 212 555 01{number:02d}",
            "CA": f"+1 416 555 01{number:02d}",
            "GB": f"+44 20 7946 0{number:03d}",
            "AU": f"+61 2 5550 {number:04d}",
        }.get(person.country.code, "")

    def plan_properties(self, person: _Person) -> dict:
        properties = {"demo": True}
        if person.stage in CUSTOMER_STAGES:
            product = PRODUCTS[PLAN_BY_SIZE[person.company.size if person.company else ""]]
            properties |= {"plan": product[0], "seats": self.rng.choice((3, 5, 10, 25))}
        return properties

    def plan_tags(self, person: _Person) -> list[str]:
        tags = []
        industry = person.company.industry if person.company else ""
        size = person.company.size if person.company else ""
        if industry in ("E-commerce", "Retail"):
            tags.append("ecommerce")
        if industry in ("Agency", "Consulting"):
            tags.append("agency")
        if size in ("201-1000", "1001+"):
            tags.append("enterprise")
        if person.entry_point == "import":
            tags.append("trade-show")
        if person.entry_point == "webinar":
            tags.append("webinar-lifecycle-emails")
        if person.stage == OPPORTUNITY and self.rng.random() < 0.5:
            tags.append("high-intent")
        if person.stage in CUSTOMER_STAGES and self.rng.random() < 0.2:
            tags.append(self.rng.choice(("champion", "beta-tester", "case-study")))
        return tags

    def write_route(self, person: _Person) -> None:
        for stage, at in person.route[1:]:
            by = person.sales_rep if stage == OPPORTUNITY else None
            lifecycle_stage_change(
                contact=person.contact,
                stage=stage,
                source=SOURCE,
                reason=STAGE_REASONS[stage],
                changed_by=by,
                occurred_at=at,
            )

    def write_consent(self, person: _Person, topics: dict, texts: dict) -> None:
        form = ENTRY_POINTS[person.entry_point][2] or "import"
        for key, consent in person.consent.items():
            online = consent.method != ConsentEntry.Method.IMPORT
            consent_grant(
                contact=person.contact,
                topic=topics[key],
                method=consent.method,
                source=_consent_source(consent.method, form),
                consent_text=texts[key],
                ip_address=person.ip_address if online else None,
                user_agent=person.user_agent if online else "",
                occurred_at=consent.granted_at,
            )
            if consent.withdrawn_at is not None:
                self.write_withdrawal(person, topics[key], consent)

    def write_withdrawal(self, person: _Person, topic: ConsentTopic, consent: _Consent) -> None:
        by_person = consent.withdraw_method != ConsentEntry.Method.ESP
        consent_withdraw(
            contact=person.contact,
            topic=topic,
            method=consent.withdraw_method,
            source={
                ConsentEntry.Method.PREFERENCE_CENTRE: "preference centre",
                ConsentEntry.Method.ONE_CLICK: "List-Unsubscribe one-click",
                ConsentEntry.Method.ESP: "ESP spam complaint",
            }[consent.withdraw_method],
            ip_address=person.ip_address if by_person else None,
            user_agent=person.user_agent if by_person else "",
            occurred_at=consent.withdrawn_at,
        )

    def write_suppressions(self, people: list[_Person], staff: _Staff) -> None:
        for person in people:
            if not person.suppression:
                continue
            manual = person.suppression == R.MANUAL
            expires_at = None
            if person.suppression == R.SOFT_BOUNCE:
                expires_at = self.now + DAY * self.rng.randint(3, 10)
            suppression_add(
                email=person.email,
                reason=person.suppression,
                source=SOURCE,
                detail=SUPPRESSION_DETAILS[person.suppression],
                expires_at=expires_at,
                created_by=staff.marketing[0] if manual else None,
            )

    # --- deals, tasks and notes

    def write_deals(self, people: list[_Person]) -> None:
        stages = {stage.key: stage for stage in DealStage.objects.all()}
        for person in people:
            if person.deal_stage:
                self.write_deal(person, stages)

    def write_deal(self, person: _Person, stages: dict[str, DealStage]) -> None:
        path = self.deal_path(person.deal_stage)
        _, product_name, price = PRODUCTS[_plan_index(person)]
        workspaces = self.rng.choice((1, 1, 2, 3, 5))
        currency = person.country.currency
        days = self.rng.randint(7, 75) if path[-1] in OPEN_DEAL_STAGES else -self.rng.randint(1, 60)
        deal = deal_create(
            name=f"{person.company or person.contact.full_name}: {product_name}",
            stage=stages[path[0]],
            contact=person.contact,
            owner=person.sales_rep,
            amount=_amount(price * workspaces, currency),
            currency=currency,
            expected_close_on=(self.now + DAY * days).date(),
        )
        reason = self.rng.choice(LOST_REASONS)
        person.lost_reason = reason
        for key in path[1:]:
            deal = deal_move_stage(
                deal=deal, stage=stages[key], lost_reason=reason if key == "lost" else ""
            )

    def deal_path(self, target: str) -> list[str]:
        if target == "won":
            return [*OPEN_DEAL_STAGES, "won"]
        if target == "lost":
            reached = self.rng.randint(1, len(OPEN_DEAL_STAGES))
            return [*OPEN_DEAL_STAGES[:reached], "lost"]
        return list(OPEN_DEAL_STAGES[: OPEN_DEAL_STAGES.index(target) + 1])

    def write_work(self, people: list[_Person]) -> None:
        for person in people:
            worker = person.owner or person.sales_rep
            for title, due_in_days, done_rate in TASKS.get(person.stage, ()):
                if person.stage == ENGAGED and not person.deal_stage and self.rng.random() < 0.5:
                    continue
                task = task_create(
                    title=title,
                    contact=person.contact,
                    owner=worker,
                    due_at=self.now + DAY * (due_in_days + self.rng.uniform(-1, 1)),
                    source=SOURCE,
                )
                if self.rng.random() < done_rate:
                    task_complete(task=task)
            for body in self.note_bodies(person):
                note_add(contact=person.contact, body=body, author=worker)

    def note_bodies(self, person: _Person) -> list[str]:
        templates = NOTES.get(person.stage, ())
        if not templates or (person.stage == ENGAGED and person.deal_stage != "lost"):
            return []
        if person.stage in (NEW_CUSTOMER, ACTIVE) and self.rng.random() < 0.5:
            return []
        template = self.rng.choice(templates)
        return [
            template.format(
                first=person.first_name,
                volume=self.rng.choice(("2,000", "15,000", "40,000")),
                reason=person.lost_reason.lower(),
            )
        ]

    # --- activities

    def write_activities(self, people: list[_Person]) -> None:
        events = [event for person in people for event in self.person_events(person)]
        events += self.anonymous_events()
        events.sort(key=lambda event: event.at)  # stable: ties keep their planned order
        items = [
            ActivityInput(
                kind=event.kind,
                source=SOURCE,
                contact_id=event.contact_id,
                anonymous_id=event.anonymous_id,
                # Follow-ups (an open hours after a send) never land in the future.
                occurred_at=min(event.at, self.now),
                properties=event.properties,
                idempotency_key=f"demo-{number}",
            )
            for number, event in enumerate(events, start=1)
        ]
        for start in range(0, len(items), BATCH_SIZE):
            activity_record_batch(items=items[start : start + BATCH_SIZE])

    def person_events(self, person: _Person) -> list[_Event]:
        return [
            *self.entry_events(person),
            *self.visit_events(person),
            *self.email_events(person),
            *self.shop_events(person),
            *self.sales_events(person),
            *self.onboarding_events(person),
        ]

    def web(self, person: _Person, at: datetime.datetime, kind: str, **properties) -> _Event:
        """An event from the website or app: the visitor cookie comes along."""
        return _Event(at, kind, properties, person.contact.pk, person.anonymous_id)

    def system(self, person: _Person, at: datetime.datetime, kind: str, **properties) -> _Event:
        """An event reported by a system (the ESP, sales, the product), with no visitor cookie."""
        return _Event(at, kind, properties, person.contact.pk)

    def entry_events(self, person: _Person) -> list[_Event]:
        if person.entry_point == "import":
            return []
        _, _, form, path, _ = ENTRY_POINTS[person.entry_point]
        at = person.first_seen
        landing = _page_view(path, PAGE_TITLES[path], self.rng.choice(REFERRERS))
        events = [self.web(person, at - self.minutes(2, 6), "page_viewed", **landing)]
        if person.entry_point == "homepage-signup":
            method = self.rng.choice(("email", "google"))
            events.append(self.web(person, at, "signed_up", plan="trial", method=method))
        else:
            events.append(self.web(person, at, "form_submitted", form=form, path=path))
        return events + self.entry_follow_ups(person, at)

    def entry_follow_ups(self, person: _Person, at: datetime.datetime) -> list[_Event]:
        entry = person.entry_point
        if entry == "seo-guide":
            guide, title = GUIDES[0]
            return [self.web(person, at, "content_downloaded", guide=guide, title=title)]
        if entry == "pricing-page":
            size = person.company.size if person.company else "1"
            return [self.web(person, at, "demo_requested", form="contact-sales", team_size=size)]
        if entry != "webinar":
            return []
        webinar = {"webinar": "lifecycle-emails", "title": "Lifecycle emails that convert"}
        events = [self.system(person, at, "webinar_registered", **webinar)]
        if self.rng.random() < 0.65 and at + 3 * DAY < self.now:
            minutes = self.rng.randint(8, 55)
            events.append(
                self.system(person, at + 3 * DAY, "webinar_attended", **webinar, minutes=minutes)
            )
        return events

    def visit_events(self, person: _Person) -> list[_Event]:
        events = []
        for _ in range(self.rng.randint(*SESSIONS[person.stage])):
            start = self.between(person.first_seen, person.last_active)
            in_app = person.stage in CUSTOMER_STAGES and self.rng.random() < 0.5
            events += self.session(start, person.contact.pk, person.anonymous_id, in_app=in_app)
        if person.stage == ENGAGED:
            guide, title = self.rng.choice(GUIDES[1:])
            at = self.between(person.first_seen, person.last_active)
            events.append(self.web(person, at, "content_downloaded", guide=guide, title=title))
        return events

    def session(
        self, start: datetime.datetime, contact_id: int | None, anonymous_id: str, *, in_app=False
    ) -> list[_Event]:
        pages = APP_PAGES if in_app else PAGES
        base = APP if in_app else SITE
        referrer = "" if in_app else self.rng.choice(REFERRERS)
        events, at = [], start
        for _ in range(self.rng.randint(1, 4)):
            path, title = self.rng.choice(pages)
            view = _page_view(path, title, referrer, base=base)
            events.append(_Event(at, "page_viewed", view, contact_id, anonymous_id))
            referrer, at = view["url"], at + self.minutes(0.3, 4)
        return events

    def email_events(self, person: _Person) -> list[_Event]:
        events = []
        for campaign in CAMPAIGNS:
            consent = person.consent.get(campaign.topic)
            sent_at = self.ago(campaign.days_ago) + self.minutes(0, 20)
            if consent is None or sent_at < consent.granted_at:
                continue
            if consent.withdrawn_at and sent_at > consent.withdrawn_at:
                continue
            if person.suppressed_at and sent_at > person.suppressed_at:
                continue  # suppression wins: nothing is sent after it
            events += self.email_flow(
                person, campaign, sent_at, self.email_outcome(person, campaign)
            )
        return events

    def email_outcome(self, person: _Person, campaign: Campaign) -> str:
        if person.suppression == R.SOFT_BOUNCE and campaign.topic == "newsletter":
            # The last newsletters before the suppression bounced softly.
            return (
                R.SOFT_BOUNCE
                if person.suppressed_at - self.ago(campaign.days_ago) < 30 * DAY
                else ""
            )
        return person.suppression if campaign.key == person.trigger_campaign else ""

    def email_flow(
        self, person: _Person, campaign: Campaign, sent_at, outcome: str
    ) -> list[_Event]:
        ids = {"message_id": self.token("msg"), "campaign": campaign.key, "topic": campaign.topic}
        events = [self.system(person, sent_at, "email_sent", subject=campaign.subject, **ids)]
        if outcome in (R.HARD_BOUNCE, R.SOFT_BOUNCE):
            return [*events, self.bounce(person, sent_at, outcome, ids)]
        events.append(self.system(person, sent_at + self.minutes(0.1, 1), "email_delivered", **ids))
        if self.rng.random() < 0.1:  # Apple Mail Privacy Protection fetches every message
            at = sent_at + self.minutes(1, 3)
            events.append(self.system(person, at, "email_opened", is_machine_open=True, **ids))
        if outcome == R.UNSUBSCRIBED:
            # Opened, then used the footer link; the consent withdrawal is stamped the same time.
            at = sent_at + self.minutes(5, 90)
            return [
                *events,
                self.system(person, at, "email_opened", is_machine_open=False, **ids),
                self.system(
                    person, person.suppressed_at, "unsubscribed", method="one_click", **ids
                ),
            ]
        if sent_at < person.last_active and self.rng.random() < OPEN_RATES[person.stage]:
            events += self.open_and_click(person, campaign, sent_at, ids)
        if outcome == R.COMPLAINT:
            at = person.suppressed_at
            events.append(self.system(person, at, "email_complained", feedback_type="abuse", **ids))
        return events

    def bounce(self, person: _Person, sent_at, reason: str, ids: dict) -> _Event:
        hard = reason == R.HARD_BOUNCE
        diagnostic = SUPPRESSION_DETAILS[reason].split(": ")[-1]
        at = sent_at + self.minutes(1, 4)
        bounce_type = "hard" if hard else "soft"
        return self.system(
            person, at, "email_bounced", bounce_type=bounce_type, diagnostic=diagnostic, **ids
        )

    def open_and_click(self, person, campaign: Campaign, sent_at, ids: dict) -> list[_Event]:
        opened_at = sent_at + self.minutes(5, 600)
        events = [self.system(person, opened_at, "email_opened", is_machine_open=False, **ids)]
        if self.rng.random() < 0.3:
            utm = f"utm_source=nextstep&utm_medium=email&utm_campaign={campaign.key}"
            url = f"{SITE}{campaign.link}?{utm}"
            events.append(
                self.system(
                    person, opened_at + self.minutes(0.2, 3), "email_clicked", url=url, **ids
                )
            )
        return events

    def shop_events(self, person: _Person) -> list[_Event]:
        if person.stage in (ENGAGED, OPPORTUNITY):
            return self.browse_and_abandon(person)
        bought_at = person.stage_at(NEW_CUSTOMER)
        if bought_at is None:
            return []
        events = self.purchase(person, bought_at, [PRODUCTS[_plan_index(person)]])
        upsell_from = bought_at + 7 * DAY
        if person.stage == ACTIVE and self.rng.random() < 0.5 and upsell_from < person.last_active:
            at = self.between(upsell_from, person.last_active)
            events += self.purchase(person, at, [self.rng.choice(PRODUCTS[3:])])
        return events

    def browse_and_abandon(self, person: _Person) -> list[_Event]:
        product = PRODUCTS[_plan_index(person)]
        at = self.between(person.first_seen, person.last_active)
        events = [
            self.web(person, at, "product_viewed", **_product(product, person.country.currency))
        ]
        if self.rng.random() < 0.5:
            cart = _cart(self.token("cart"), [product], person.country.currency)
            events.append(self.web(person, at + self.minutes(1, 5), "cart_updated", **cart))
            if person.stage == OPPORTUNITY and self.rng.random() < 0.4:
                events.append(self.web(person, at + self.minutes(6, 9), "checkout_started", **cart))
            # The shop reports an abandoned cart after an hour without checkout.
            events.append(self.web(person, at + self.minutes(65, 70), "cart_abandoned", **cart))
        return events

    def purchase(self, person: _Person, at: datetime.datetime, products: list) -> list[_Event]:
        currency = person.country.currency
        cart = _cart(self.token("cart"), products, currency)
        order = {
            **cart,
            "order_id": self.token("ord"),
            "channel": "sales" if person.stage_at(OPPORTUNITY) else "self-serve",
        }
        return [
            self.web(
                person,
                at - self.minutes(60, 300),
                "product_viewed",
                **_product(products[0], currency),
            ),
            self.web(person, at - self.minutes(20, 40), "cart_updated", **cart),
            self.web(person, at - self.minutes(5, 15), "checkout_started", **cart),
            self.web(person, at, "order_placed", **order),
        ]

    def sales_events(self, person: _Person) -> list[_Event]:
        handed_at = person.stage_at(OPPORTUNITY)
        if handed_at is None and person.deal_stage == "lost":
            handed_at = self.between(person.first_seen, person.last_active)
        if handed_at is None:
            return []
        # No `handed_off` here: scoring hands these leads off itself when the demo replays
        # their history (scoring/demo.py), so each handoff is a real one. The pricing page
        # and the demo request are the signals the demo's handoff rule looks for.
        pricing = _page_view("/pricing", PAGE_TITLES["/pricing"], "")
        return [
            self.web(person, handed_at - DAY - HOUR, "page_viewed", **pricing),
            self.web(person, handed_at - DAY, "demo_requested", form="book-a-demo"),
        ]

    def onboarding_events(self, person: _Person) -> list[_Event]:
        bought_at = person.stage_at(NEW_CUSTOMER)
        if bought_at is None:
            return []
        reached = {NEW_CUSTOMER: self.rng.randint(1, 3), AT_RISK: 2, CHURNED: 2}.get(
            person.stage, 5
        )
        times = sorted(self.between(bought_at, person.last_active) for _ in range(reached))
        return [
            self.system(
                person, at, "onboarding_milestone_reached", milestone=key, title=title, step=step
            )
            for step, ((key, title), at) in enumerate(zip(MILESTONES, times, strict=False), start=1)
        ]

    def anonymous_events(self) -> list[_Event]:
        """Visitors we never identified: page views and the odd abandoned cart."""
        events = []
        for _ in range(max(5, self.size // 5)):
            visitor = self.token("anon")
            for _ in range(self.rng.randint(1, 3)):
                events += self.session(self.between(self.ago(90), self.now), None, visitor)
            if self.rng.random() < 0.3:
                events += self.anonymous_cart(visitor)
        return events

    def anonymous_cart(self, visitor: str) -> list[_Event]:
        product = self.rng.choice(PRODUCTS[:3])
        at = self.between(self.ago(90), self.ago(1))
        cart = _cart(self.token("cart"), [product], "EUR")
        events = [_Event(at, "product_viewed", _product(product, "EUR"), None, visitor)]
        if self.rng.random() < 0.5:
            events.append(_Event(at + self.minutes(1, 4), "cart_updated", cart, None, visitor))
            events.append(_Event(at + self.minutes(65, 70), "cart_abandoned", cart, None, visitor))
        return events


# --- Pure helpers -----------------------------------------------------------------------------


def _staff_ensure() -> _Staff:
    """Create the demo's staff in their role groups; unusable passwords (login is elsewhere)."""
    user_model = get_user_model()
    by_group = defaultdict(list)
    for username, first_name, last_name, group_name in STAFF:
        user, created = user_model.objects.get_or_create(
            username=username,
            defaults={
                "first_name": first_name,
                "last_name": last_name,
                "email": f"{username}@nextstep.example",
                "is_staff": True,
            },
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        user.groups.add(Group.objects.get(name=group_name))
        by_group[group_name].append(user)
    return _Staff(
        sales=by_group["Sales"],
        marketing=by_group["Marketing"],
        success=by_group["Customer success"][0],
    )


def _latest_text(topic: ConsentTopic) -> ConsentText | None:
    return ConsentText.objects.filter(topic=topic).order_by("-version").first()


def _quota(weights: dict[str, float], total: int) -> list[str]:
    """Split total by weight, at least one each, so small demos still show every stage."""
    raw = {key: weight * total for key, weight in weights.items()}
    counts = {key: max(1, int(value)) for key, value in raw.items()}
    by_remainder = sorted(raw, key=lambda key: raw[key] - int(raw[key]), reverse=True)
    for key in by_remainder[: max(0, total - sum(counts.values()))]:
        counts[key] += 1
    return [key for key, count in counts.items() for _ in range(count)]


def _route(target: str, *, via_subscriber: bool, self_serve: bool, via_at_risk: bool) -> list[str]:
    """The stages a person passed through to reach `target`, oldest first."""
    route = list(STAGES[: STAGES.index(target) + 1])
    skipped = set()
    if not via_subscriber and target != SUBSCRIBER:
        skipped.add(SUBSCRIBER)
    if self_serve and target in CUSTOMER_STAGES:
        skipped |= {ENGAGED, OPPORTUNITY}  # bought straight from the trial
    if target == CHURNED and not via_at_risk:
        skipped.add(AT_RISK)
    return [stage for stage in route if stage not in skipped]


def _owner_for(stage: str, sales_rep: AbstractBaseUser, staff: _Staff) -> AbstractBaseUser | None:
    if stage in CUSTOMER_STAGES:
        return staff.success
    return sales_rep if stage in (ENGAGED, OPPORTUNITY) else None


def _country_source(person: _Person) -> str:
    if not person.country.code:
        return Contact.CountrySource.UNKNOWN
    if person.entry_point == "import":
        return Contact.CountrySource.IMPORT
    if person.entry_point == "homepage-signup":
        return Contact.CountrySource.IP
    return Contact.CountrySource.DECLARED


def _consent_source(method: str, form: str) -> str:
    if method == ConsentEntry.Method.IMPORT:
        return f"import: {IMPORT_FILE}"
    if method == ConsentEntry.Method.DOUBLE_OPT_IN:
        return f"double opt-in confirmation: {form}"
    return f"form: {form}"


def _company_domain(name: str) -> str:
    return f"{_ascii(name.split()[0])}.example"


def _ascii(name: str) -> str:
    """Lower-case ASCII for email addresses and domains: Müller → mueller, Côté → cote."""
    for umlaut, spelled in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        name = name.lower().replace(umlaut, spelled)
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(char for char in plain if char.isalnum() or char == "-")


def _plan_index(person: _Person) -> int:
    return PLAN_BY_SIZE[person.company.size if person.company else ""]


def _price(eur: float, currency: str) -> float:
    return round(eur * EUR_RATES[currency], -1 if currency == "SEK" else 0)


def _amount(eur: float, currency: str) -> Decimal:
    """A deal amount in round hundreds, with cents, as the database stores it."""
    return Decimal(round(eur * EUR_RATES[currency], -2)).quantize(Decimal("0.01"))


def _product(product: tuple, currency: str) -> dict:
    product_id, name, eur = product
    return {
        "product_id": product_id,
        "name": name,
        "price": _price(eur, currency),
        "currency": currency,
    }


def _cart(cart_id: str, products: list, currency: str) -> dict:
    items = [{**_product(product, currency), "quantity": 1} for product in products]
    value = round(sum(item["price"] * item["quantity"] for item in items), 2)
    return {"cart_id": cart_id, "value": value, "currency": currency, "items": items}


def _page_view(path: str, title: str, referrer: str, *, base: str = SITE) -> dict:
    return {"path": path, "title": title, "url": f"{base}{path}", "referrer": referrer}
