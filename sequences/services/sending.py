"""Sending a batch of email steps: gate, ledger claim, ESP hand-off, result — never twice.

1. emails_prepare (in the batch's transaction, contacts locked): the send gate decides
   for the whole batch from set-based facts (gate.GateBatch); on allow the (enrollment,
   step) ledger rows are inserted as `claimed` in one statement — the unique constraint
   makes each the one and only claim — and committed before the ESP is called. A claim
   starts with `claimed_at` empty: "claimed, not yet handed over".
2. emails_deliver (no transaction): one backend connection, opened once; per message,
   first commit `claimed_at` (the hand-off: from here a crash means `unknown`), then one
   AnymailMessage to one recipient, so one recipient's rejection never touches another's.
3. emails_record (one transaction): sent rows in one UPDATE and their email_sent
   activities in one batch (one signal, one coalesced downstream task); retry later (a
   429/5xx, or the ESP certainly never got it: connection refused, connect timeout, an
   error before the request; bounded backoff), failed (permanent, or retries exhausted)
   or unknown (the request may have reached the ESP: never resent automatically;
   outcomes.py decides).
A handed-over row left `claimed` past the lease (a crash mid-send) becomes `unknown`,
never resent; a row claimed but never handed over is claimed again by the next run.
An enrollment whose email is `unknown` waits on that step until the row is resolved
(ledger.py: a webhook, the ESP's API or staff): sent → it goes on; failed → it follows
the sequence's `on_send_failure`.
"""

import datetime
import random
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from anymail.message import AnymailMessage
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.db.models import F, Q
from django.utils import timezone

from crm.models import Activity
from crm.services import ActivityInput, activity_record_batch, task_create
from crm.set_inserts import model_new, rows_insert
from sequences.conditions import contact_facts
from sequences.gate import GateBatch, evaluate_in_batch
from sequences.links import unsubscribe_mailto, unsubscribe_url
from sequences.models import EmailTemplate, Enrollment, OutboundMessage, Sequence
from sequences.rendering import RenderedEmail, UnsafeTemplate, postal_address, render_email
from sequences.services.enrollments import (
    audience_admits,
    audience_segment_members,
    enrollment_event_add,
    in_audience_segment,
)
from sequences.services.ledger import ledger_mark_unknown
from sequences.services.moves import Move, lease_length
from sequences.services.outcomes import RETRIED, SENT, UNKNOWN, Delivery, delivery_from_error
from sequences.services.variants import variant_for

__all__ = [
    "Delivery",
    "delivery_result",
    "email_deliver",
    "emails_deliver",
    "emails_prepare",
    "emails_record",
]

Row = OutboundMessage.State
State = Enrollment.State
MAX_SEND_ATTEMPTS = 5
DEFAULT_RETRY_BASE_SECONDS = 60
#: An enrollment waiting on an `unknown` email looks again this often; resolving the
#: row (ledger.py) wakes it at once.
UNKNOWN_RECHECK = datetime.timedelta(hours=6)
#: Gate reasons that skip this email and go on (the rest mean "this contact must not get
#: this sequence's mail": leave it). A held-out contact walks the whole sequence unmailed,
#: so its goals and exits compare with the mailed group's (docs/reporting.md).
DEFER_OR_CONTINUE = frozenset(
    {"frequency_cap", "low_engagement_throttle", "quiet_hours", "holdout"}
)


@dataclass
class Prepared:
    row: OutboundMessage
    message: AnymailMessage
    enrollment: Enrollment
    step: dict


def emails_prepare(items: list[tuple[Enrollment, dict]], now: datetime.datetime) -> list:
    """Decide and claim a batch of email steps: a Prepared to send, or a Move, for each.

    Runs in the batch's transaction, with the contacts locked (running.py). A fixed
    number of queries whatever the batch size: the ledger rows already there, the
    audience segments, the gate's facts (GateBatch), one query per distinct template,
    and the claims as one bulk insert. Enrollments are decided in order, and each claim
    is noted on the gate, so a second email to one contact in the batch counts the first.
    """
    if not items:
        return []
    existing = _rows_for(items)
    contacts = [enrollment.contact for enrollment, _step in items]
    members = audience_segment_members(
        {enrollment.sequence for enrollment, _step in items}, [c.pk for c in contacts]
    )
    gate = GateBatch(contacts, now)
    templates = _Templates()
    results: list = []
    claims: list[tuple[int, Enrollment, dict, EmailTemplate, OutboundMessage | None, dict]] = []
    for enrollment, step in items:
        row = existing.get((enrollment.pk, step["key"]))
        outcome = _decide(enrollment, step, row, now, gate, members, templates)
        if isinstance(outcome, Move):
            results.append(outcome)
            continue
        template, variant, rendered, unsubscribe = outcome
        gate.note_claim(enrollment.contact, enrollment.sequence, now)
        claims.append((len(results), enrollment, step, template, row, variant))
        results.append((rendered, unsubscribe))
    claimed = _claim_rows(claims, now)
    for position, enrollment, step, _template, _row, _variant in claims:
        row = claimed.get(position)
        if row is None:
            results[position] = Move.hold(now + lease_length(), "sending_elsewhere")
            continue
        rendered, unsubscribe = results[position]
        message = email_message(enrollment, row, rendered, unsubscribe=unsubscribe)
        results[position] = Prepared(row=row, message=message, enrollment=enrollment, step=step)
    return results


def _rows_for(items) -> dict[tuple[int, str], OutboundMessage]:
    """The ledger rows of these (enrollment, step) pairs that exist already (one query)."""
    wanted = {(enrollment.pk, step["key"]) for enrollment, step in items}
    # Filtered by step too: an enrollment's rows of its earlier steps are never wanted
    # (reading them as model instances was a visible share of a second step's batch).
    rows = OutboundMessage.objects.filter(
        enrollment_id__in={pk for pk, _key in wanted}, step__in={key for _pk, key in wanted}
    )
    return {
        (row.enrollment_id, row.step): row
        for row in rows
        if (row.enrollment_id, row.step) in wanted
    }


class _Templates:
    """Templates by pk or by key, each read once per batch."""

    def __init__(self):
        self._cache: dict = {}

    def get(self, step: dict, variant: dict | None) -> EmailTemplate | None:
        key = (
            ("key", variant["template"]) if variant is not None else ("pk", step.get("template_id"))
        )
        if key not in self._cache:
            self._cache[key] = _template_for(step, variant)
        return self._cache[key]


def _reusable(row: OutboundMessage) -> bool:
    """A row this step may claim again: a retry, or a claim never handed to the ESP.

    A batch claims its rows with `claimed_at` empty and sets it, committed, just before
    each hand-off (emails_deliver); a row still without it was never handed over (its
    worker stopped or was killed first), so sending it cannot send anything twice.
    """
    return row.state == Row.RETRY or (row.state == Row.CLAIMED and row.claimed_at is None)


def _decide(enrollment, step, row, now, gate, members, templates):
    """The single email's decision, from the batch's facts: a Move, or what to claim."""
    if row is not None and not _reusable(row):
        return _existing_row_move(enrollment, step, row, now)
    if row is not None and row.next_attempt_at and row.next_attempt_at > now:
        return Move.hold(row.next_attempt_at, "retry_wait", row.reason)
    contact, sequence = enrollment.contact, enrollment.sequence
    facts = contact_facts(contact)  # once: the audience check and the template both read it
    if not audience_admits(sequence, facts) or not in_audience_segment(
        sequence, contact.pk, members
    ):
        return Move.end(State.EXITED, "audience_left")
    decision = evaluate_in_batch(gate, contact, sequence, step)
    if not decision.allowed:
        return _denied_move(enrollment, step, row, decision, now)
    variant = variant_for(enrollment, step, pinned=row.variant if row else "")
    template = templates.get(step, variant)
    if template is None:
        return _failure_move(enrollment, step, row, "template_missing", now)
    context = email_context(enrollment, template, facts=facts)
    try:
        rendered = render_email(template, context)
    except UnsafeTemplate as exc:
        return _failure_move(enrollment, step, row, f"render_error: {exc}", now)
    if rendered.missing:
        reason = "missing_data:" + ",".join(rendered.missing)
        return _failure_move(enrollment, step, row, reason, now)
    return template, variant, rendered, context["unsubscribe_url"]


def _claim_rows(claims, now: datetime.datetime) -> dict[int, OutboundMessage]:
    """Claim the ledger rows of a batch; position → row, absent where another holds it.

    New rows are one bulk insert (the unique (enrollment, step) constraint is still the
    one and only claim: on a conflict each row is tried alone); rows claimed again (a
    retry, a claim never handed over) are one UPDATE and one read.
    """
    fresh = [claim for claim in claims if claim[4] is None]
    again = [claim for claim in claims if claim[4] is not None]
    claimed: dict[int, OutboundMessage] = {}
    if fresh:
        rows = [_new_row(enrollment, step, template, variant, now)
                for _p, enrollment, step, template, _row, variant in fresh]  # fmt: skip
        try:
            with transaction.atomic():
                rows_insert(OutboundMessage, rows)
            claimed.update((claim[0], row) for claim, row in zip(fresh, rows, strict=True))
        except IntegrityError:
            for claim, row in zip(fresh, rows, strict=True):
                try:
                    with transaction.atomic():
                        row.pk = None
                        row.save(force_insert=True)
                    claimed[claim[0]] = row
                except IntegrityError:
                    continue  # another run holds this (enrollment, step)
    if again:
        pks = [claim[4].pk for claim in again]
        OutboundMessage.objects.filter(
            Q(state=Row.RETRY) | Q(state=Row.CLAIMED, claimed_at__isnull=True), pk__in=pks
        ).update(state=Row.CLAIMED, claimed_at=None)
        mine = OutboundMessage.objects.filter(pk__in=pks, state=Row.CLAIMED, claimed_at=None)
        by_pk = {row.pk: row for row in mine}
        claimed.update((claim[0], by_pk[claim[4].pk]) for claim in again if claim[4].pk in by_pk)
    return claimed


#: OutboundMessage() without Model.__init__'s per-call walk over every field (a claim
#: per email); the same instance, its uuid default called per row.
_message_new = model_new(OutboundMessage)


def _new_row(enrollment, step, template, variant, now) -> OutboundMessage:
    return _message_new(
        enrollment=enrollment,
        step=step["key"],
        contact=enrollment.contact,
        template=template,
        variant=variant["key"] if variant else "",
        is_marketing=not enrollment.sequence.is_transactional,
        state=Row.CLAIMED,
        attempts=0,  # counted at the hand-off (emails_deliver)
        claimed_at=None,
        created_at=now,
    )


def _template_for(step: dict, variant: dict | None) -> EmailTemplate | None:
    if variant is not None:
        return EmailTemplate.objects.filter(key=variant["template"]).first()
    return EmailTemplate.objects.filter(pk=step.get("template_id")).first()


def _existing_row_move(enrollment: Enrollment, step: dict, row: OutboundMessage, now) -> Move:
    """The step was attempted before (a re-run after a crash or a resume): never send again."""
    lease = lease_length()
    if row.state == Row.CLAIMED and row.claimed_at and row.claimed_at + lease > now:
        return Move.hold(row.claimed_at + lease, "sending_elsewhere")
    if row.state == Row.CLAIMED:
        reason = "crashed while sending; not resent"
        ledger_mark_unknown(rows=OutboundMessage.objects.filter(pk=row.pk, state=Row.CLAIMED))
        return Move.hold(now + UNKNOWN_RECHECK, "unknown", reason)
    if row.state == Row.UNKNOWN:
        # Not as if sent: wait for the reconciliation (webhook, ESP lookup or staff).
        return Move.hold(now + UNKNOWN_RECHECK, "awaiting_reconciliation", row.reason)
    if row.state == Row.FAILED:
        return _on_failure(enrollment, row.reason)
    if row.state == Row.SENT:
        # A batch stores each `sent` before its activities (emails_deliver); a crash in
        # between leaves the activity to this re-run (a replay when it exists: dropped).
        activity_record_batch(items=[_sent_activity(enrollment, row, step, row.sent_at or now)])
    return Move(event="already_" + row.state, reason=row.reason)


def _denied_move(enrollment, step, row, decision, now) -> Move:
    if decision.defer_until is not None:
        return Move.hold(decision.defer_until, "deferred", decision.reason)
    _close(enrollment, step, row, Row.SKIPPED, decision.reason, now)
    if decision.reason in DEFER_OR_CONTINUE:
        return Move(event="skipped", reason=decision.reason)
    # Suppression and consent denials mean this contact must not get this sequence: leave it.
    enrollment_event_add(
        enrollment=enrollment, kind="denied", step=step["key"], reason=decision.reason, now=now
    )
    return Move.end(State.EXITED, f"denied:{decision.reason}")


def _failure_move(enrollment, step, row, reason: str, now) -> Move:
    _close(enrollment, step, row, Row.SKIPPED, reason, now)
    return _on_failure(enrollment, reason)


def _on_failure(enrollment: Enrollment, reason: str) -> Move:
    """Follow the sequence's failure path for an email that could not go out."""
    policy = enrollment.sequence.on_send_failure
    if policy == Sequence.OnSendFailure.EXIT or not policy:
        return Move.end(State.FAILED, reason)
    if policy == Sequence.OnSendFailure.NOTIFY_OWNER:
        task_create(
            title=f"Email not sent ({enrollment.sequence.name}): {reason}"[:200],
            contact=enrollment.contact,
            owner=enrollment.contact.owner or enrollment.sequence.owner,
            source=f"sequence:{enrollment.sequence.key}",
        )
    return Move(event="send_failed", reason=reason)


def _close(enrollment, step, row, state: str, reason: str, now) -> None:
    """Write a terminal ledger row for a step that sends nothing (skip with reason)."""
    if row is not None:
        OutboundMessage.objects.filter(pk=row.pk).update(state=state, reason=reason[:300])
        return
    try:
        with transaction.atomic():
            OutboundMessage.objects.create(
                enrollment=enrollment,
                step=step["key"],
                contact=enrollment.contact,
                template_id=step.get("template_id"),
                is_marketing=not enrollment.sequence.is_transactional,
                state=state,
                reason=reason[:300],
                created_at=now,
            )
    except IntegrityError:
        pass  # a row exists: the step was handled already


# --- The message ----------------------------------------------------------------------------


def email_context(
    enrollment: Enrollment, template: EmailTemplate, *, facts: dict | None = None
) -> dict:
    """Plain data for the restricted engine: no model instance ever reaches a template.

    `facts`: the contact's contact_facts() when the caller has them already."""
    contact, sequence = enrollment.contact, enrollment.sequence
    facts = contact_facts(contact) if facts is None else facts
    owner = contact.owner or sequence.owner
    unsubscribe = unsubscribe_url(contact, sequence.topic)
    return {
        "contact": {**facts, "full_name": contact.full_name},
        "company": facts["company"],
        "owner": {
            "name": owner.get_full_name() if owner else "",
            "first_name": owner.first_name if owner else "",
            "email": owner.email if owner else "",
        },
        "trigger": dict(enrollment.trigger_properties or {}),
        "links": {"unsubscribe_url": unsubscribe, "cta_url": template.cta_url},
        "unsubscribe_url": unsubscribe,
        "postal_address": postal_address(),
        "cta_url": template.cta_url,
        "cta_label": template.cta_label,
    }


def email_message(
    enrollment: Enrollment, row: OutboundMessage, rendered: RenderedEmail, unsubscribe: str = ""
):
    """One AnymailMessage to one recipient, with opaque ids only in its metadata.

    `unsubscribe`: the URL the body links to, when known (signing it again per message
    was a visible share of a batch's CPU)."""
    message = AnymailMessage(
        subject=rendered.subject,
        body=rendered.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[enrollment.contact.email],
    )
    message.attach_alternative(rendered.html, "text/html")
    message.metadata = {
        "message_uuid": str(row.uuid),
        "enrollment_id": str(enrollment.pk),
        "step": row.step,
    }
    if not enrollment.sequence.is_transactional:
        message.extra_headers = marketing_headers(enrollment, unsubscribe)
    return message


def marketing_headers(enrollment: Enrollment, unsubscribe: str = "") -> dict[str, str]:
    """RFC 8058 one-click unsubscribe (one HTTPS URL, optional mailto) and a List-Id per topic."""
    topic = enrollment.sequence.topic
    targets = [f"<{unsubscribe or unsubscribe_url(enrollment.contact, topic)}>"]
    mailto = unsubscribe_mailto()
    if mailto:
        targets.append(f"<{mailto}>")
    host = urlsplit(settings.SITE_URL).hostname or "localhost"
    return {
        "List-Unsubscribe": ", ".join(targets),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": f"{topic.name} <{topic.key}.{host}>",
    }


# --- Delivery and its result ----------------------------------------------------------------


def email_deliver(prepared: Prepared, mail_connection) -> Delivery:
    """Hand the message to the ESP and classify the answer (outcomes.py)."""
    message = prepared.message
    message.connection = mail_connection
    try:
        message.send()
    except Exception as exc:
        return delivery_from_error(exc, message)
    return _recipient_result(message)


def _recipient_result(message: AnymailMessage) -> Delivery:
    status = message.anymail_status
    recipient = status.recipients.get(message.to[0]) if status else None
    if recipient is not None and recipient.status in ("rejected", "invalid", "failed"):
        return Delivery("permanent", reason=f"ESP {recipient.status}")
    message_id = recipient.message_id if recipient else None
    if message_id is None and status is not None:
        message_id = status.message_id
    return Delivery("sent", esp_message_id="" if message_id is None else str(message_id))


@dataclass(frozen=True)
class Result:
    """The ESP's answer as the ledger row stores it, and where the enrollment goes next.

    `move` None: the email failed for good; the sequence's failure path decides (at
    record time, since it may create a task for the owner).
    """

    delivery: Delivery
    fields: dict
    move: Move | None
    reason: str = ""


def delivery_result(prepared: Prepared, delivery: Delivery, now: datetime.datetime) -> Result:
    """Sent (with the ESP message id), unknown, retry later (bounded backoff) or failed."""
    if delivery.status == SENT:
        fields = {"state": Row.SENT, "esp_message_id": delivery.esp_message_id[:200]}
        move = Move(event="sent", reason=f"message {prepared.row.uuid}")
        return Result(delivery, {**fields, "sent_at": now}, move)
    if delivery.status == UNKNOWN:
        move = Move.hold(now + UNKNOWN_RECHECK, "unknown", delivery.reason)
        return Result(delivery, {"state": Row.UNKNOWN, "reason": delivery.reason[:300]}, move)
    attempts = prepared.row.attempts
    if delivery.status in RETRIED and attempts < MAX_SEND_ATTEMPTS:
        retry_at = now + retry_delay(attempts)
        fields = {"state": Row.RETRY, "reason": delivery.reason[:300], "next_attempt_at": retry_at}
        return Result(delivery, fields, Move.hold(retry_at, "retry", delivery.reason))
    reason = (
        delivery.reason
        if delivery.status == "permanent"
        else (f"gave up after {attempts} attempts: {delivery.reason}")
    )
    fields = {"state": Row.FAILED, "reason": reason[:300], "next_attempt_at": None}
    return Result(delivery, fields, None, reason)


def hand_off_group() -> int:
    """Messages per committed hand-off (SEQUENCES_HAND_OFF_GROUP, default 1); 0: the batch.

    1 keeps the promise that a killed worker leaves at most the message in flight in
    doubt (`unknown`), at one statement per message. Larger groups trade that for fewer
    statements: a worker killed mid-group leaves the whole group `unknown` (never
    resent; resolved by its webhooks, the ESP's API or staff), including messages it
    never sent, which only staff can release. docs/performance.md has the figures.
    """
    return max(int(getattr(settings, "SEQUENCES_HAND_OFF_GROUP", 1)), 0)


def emails_deliver(
    prepared: list[Prepared],
    mail_connection,
    now: datetime.datetime,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[Result | None]:
    """Hand a batch's messages to the ESP through one open connection, one at a time.

    The hand-off is committed per group of messages (SEQUENCES_HAND_OFF_GROUP: by
    default one message, one statement each; 0 is the whole batch in one statement):
    each row's `claimed_at` and attempt count, outside any transaction. From then on
    a crash makes the group's rows `unknown` (never resent), while rows not yet handed
    over stay claimable by the next run (`_reusable`). The previous group's `sent`
    answers are committed in the same statement as the next group's hand-off, and a
    retry or failure at once, so a crash makes only the group in flight unknown. Each
    message is its own send_messages call on the shared connection: one recipient's error never
    touches another's message. Statements: one per group (with the previous group's
    `sent` answers in it), plus one per retry or failure.
    None: not handed over (`should_stop` said the time budget is spent, or the claim
    was lost); a row handed over but not sent is handed back at once.
    """
    results: list[Result | None] = [None] * len(prepared)
    size = hand_off_group() or len(prepared) or 1
    opened = mail_connection.open() if prepared else False
    unsent: list[OutboundMessage] = []
    try:
        for start in range(0, len(prepared), size):
            group = prepared[start : start + size]
            if should_stop():
                break
            # The previous group's `sent` answers go in the same statement as this hand-off.
            done = _sent_rows(
                prepared[max(start - size, 0) : start], results[max(start - size, 0) : start]
            )
            handed = _hand_off([item.row for item in group], done)
            for position, item in enumerate(group, start):
                if item.row.pk not in handed:
                    continue
                if should_stop():
                    unsent.append(item.row)
                    continue
                result = delivery_result(item, email_deliver(item, mail_connection), now)
                results[position] = result
                if result.delivery.status not in (SENT, UNKNOWN):
                    _store(item.row, result.fields)  # a retry or failure: rare, stored now
    finally:
        if opened:
            mail_connection.close()
        _hand_back(unsent)
    return results


def _hand_off(rows: list[OutboundMessage], done: list[OutboundMessage]) -> set[int]:
    """Commit that these rows are about to reach the ESP (the point of no automatic
    resend), with the `sent` answers of the rows `done` before them; one statement.
    Returns the ids of `rows` still ours.

    Plain SQL: building the ORM's UPDATE cost more CPU than the statement itself
    (py-spy, docs/performance.md).
    """
    if not rows:
        return set()
    at = timezone.now()
    marks = ", ".join("%s" for _row in rows)
    params: list = [at, *(row.pk for row in rows)]
    sql = f'UPDATE "{OutboundMessage._meta.db_table}" SET "claimed_at" = %s, '
    sql += f'"attempts" = "attempts" + 1 WHERE "id" IN ({marks}) AND "state" = %s '
    sql += 'AND "claimed_at" IS NULL RETURNING "id"'
    if done:
        sent_sql, sent_params = _sent_sql(done)
        # Each SET is a CASE: a handed row gets its hand-off, a done row its answer.
        sql = (
            f'UPDATE "{OutboundMessage._meta.db_table}" SET '
            f'"claimed_at" = CASE WHEN "id" IN ({marks}) THEN %s ELSE "claimed_at" END, '
            f'"attempts" = CASE WHEN "id" IN ({marks}) THEN "attempts" + 1 '
            'ELSE "attempts" END, '
            f"{sent_sql['set']} "
            f'WHERE ("id" IN ({marks}) AND "state" = %s AND "claimed_at" IS NULL) '
            f'OR ({sent_sql["where"]}) RETURNING "id"'
        )
        ids = [row.pk for row in rows]
        params = [*ids, at, *ids, *sent_params["set"], *ids, Row.CLAIMED, *sent_params["where"]]
    else:
        params.append(Row.CLAIMED)
    with db_connection.cursor() as cursor:
        cursor.execute(sql, params)
        returned = {pk for (pk,) in cursor.fetchall()}
    handed = {row.pk for row in rows} & returned
    for row in rows:
        if row.pk in handed:
            row.claimed_at, row.attempts = at, row.attempts + 1
    return handed


def _hand_back(rows: list[OutboundMessage]) -> None:
    """Rows handed over but never sent (the time budget ran out): claimable again."""
    if not rows:
        return
    OutboundMessage.objects.filter(
        pk__in=[row.pk for row in rows], state=Row.CLAIMED, claimed_at__isnull=False
    ).update(claimed_at=None, attempts=F("attempts") - 1)
    for row in rows:
        row.claimed_at, row.attempts = None, row.attempts - 1


def _sent_rows(prepared: list[Prepared], results: list[Result | None]) -> list[OutboundMessage]:
    """The rows of these answers that were sent, with their send time and ESP id set."""
    sent: list[OutboundMessage] = []
    for item, result in zip(prepared, results, strict=True):
        if result is not None and result.delivery.status == SENT:
            item.row.esp_message_id = result.fields["esp_message_id"]
            item.row.sent_at = result.fields["sent_at"]
            sent.append(item.row)
    return sent


def _store_sent(prepared: list[Prepared], results: list[Result | None]) -> None:
    """Store the `sent` answers not stored yet in one statement. (Retries and failures
    are stored as they come, emails_deliver; `unknown` with the enrollment's hold,
    emails_record: stored earlier, reconciliation could resolve it and wake the
    enrollment before the hold is written, and the hold would put it back to sleep. A
    crash in between leaves the row claimed, which the lease turns `unknown` as well.)"""
    sent = _sent_rows(prepared, results)
    if sent:
        sql, params = _sent_sql(sent)
        with db_connection.cursor() as cursor:
            cursor.execute(
                f'UPDATE "{OutboundMessage._meta.db_table}" SET {sql["set"]} WHERE {sql["where"]}',
                [*params["set"], *params["where"]],
            )


def _store(row: OutboundMessage, fields: dict) -> None:
    """Store an answer on a row still claimed (or already marked unknown)."""
    OutboundMessage.objects.filter(pk=row.pk, state__in=[Row.CLAIMED, Row.UNKNOWN]).update(**fields)


def emails_record(outcomes: list[tuple[Prepared, Result]], now: datetime.datetime) -> list[Move]:
    """Finish a batch in its own transaction: the answers not stored yet (with the
    default hand-off group, all of them: the sent rows in one UPDATE), the unknown rows,
    the email_sent activities in one activity_record_batch (one domain signal, so one
    coalesced downstream task), and each enrollment's move."""
    _store_sent([p for p, _r in outcomes], [r for _p, r in outcomes])
    sent = [prepared for prepared, result in outcomes if result.delivery.status == SENT]
    for prepared, result in outcomes:
        if result.delivery.status == SENT:
            prepared.row.state = Row.SENT
        elif result.delivery.status == UNKNOWN:
            _store(prepared.row, result.fields)  # in the hold's transaction: see _store_sent
    if sent:
        activity_record_batch(
            items=[_sent_activity(p.enrollment, p.row, p.step, p.row.sent_at or now) for p in sent]
        )
    return [
        result.move if result.move is not None else _on_failure(prepared.enrollment, result.reason)
        for prepared, result in outcomes
    ]


def _sent_sql(rows: list[OutboundMessage]) -> tuple[dict, dict]:
    """SET and WHERE parts storing `sent`, each row's send time and ESP message id
    (rows still claimed or unknown), with their parameters.

    One CASE over the ids instead of bulk_update(), whose per-row expressions cost more
    CPU than the send itself at a few hundred rows.
    """
    cases = " ".join("WHEN %s THEN %s" for _row in rows)
    ids = ", ".join("%s" for _row in rows)
    set_params: list = []
    times = {row.sent_at for row in rows}  # in practice one: the batch's `now`
    if len(times) == 1:
        sent_at = f'CASE WHEN "id" IN ({ids}) THEN %s ELSE "sent_at" END'
        set_params += [row.pk for row in rows] + [times.pop()]
    else:
        sent_at = f'CASE "id" {cases} ELSE "sent_at" END'
        for row in rows:
            set_params += [row.pk, row.sent_at]
    state = f'CASE WHEN "id" IN ({ids}) THEN %s ELSE "state" END'
    set_params += [row.pk for row in rows] + [Row.SENT]
    for row in rows:
        set_params += [row.pk, row.esp_message_id]
    set_sql = (
        f'"sent_at" = {sent_at}, "state" = {state}, '
        f'"esp_message_id" = CASE "id" {cases} ELSE "esp_message_id" END'
    )
    where_sql = f'"id" IN ({ids}) AND "state" IN (%s, %s)'
    where_params = [row.pk for row in rows] + [Row.CLAIMED, Row.UNKNOWN]
    return {"set": set_sql, "where": where_sql}, {"set": set_params, "where": where_params}


def retry_delay(attempts: int) -> datetime.timedelta:
    """Exponential backoff with jitter: about 1, 2, 4, 8 minutes (SEQUENCES_RETRY_BASE_SECONDS)."""
    base_seconds = getattr(settings, "SEQUENCES_RETRY_BASE_SECONDS", DEFAULT_RETRY_BASE_SECONDS)
    delay = base_seconds * (2 ** max(attempts - 1, 0))
    return datetime.timedelta(seconds=delay + random.uniform(0, base_seconds / 2))


def _sent_activity(enrollment, row: OutboundMessage, step: dict, at) -> ActivityInput:
    # The idempotency key is the message's: an email_sent activity exists once, even
    # when a re-run (_existing_row_move) or reconciliation (ledger.py) records it again.
    return ActivityInput(
        kind=Activity.Kind.EMAIL_SENT,
        source="sequences",
        contact_id=enrollment.contact_id,
        occurred_at=at,
        properties={
            "message_uuid": str(row.uuid),
            "sequence": enrollment.sequence.key,
            "step": step["key"],
            "template": step.get("template_key", ""),
        },
        idempotency_key=f"outbound:{row.uuid}",
    )
