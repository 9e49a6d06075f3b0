"""A/B variants of an email step: deterministic assignment and an automatic winner.

A send_email step's config may list variants, each a template and a share of sends:
    {"variants": [{"key": "a", "template": "welcome-a", "split": 50},
                  {"key": "b", "template": "welcome-b", "split": 50}],
     "winner_by": "click"}            # or "goal": the enrollment converted
An enrollment always gets the same variant (a hash of its pk and the step key). The
hourly task compares variants once each has the step's "min_sample" sends (default
MIN_SAMPLE; at least conditions.LOWEST_MIN_SAMPLE): when the best beats every other in a
two-proportion z-test at 95% (statsmodels' `proportions_ztest`, pooled variance,
two-sided p < 0.05 with the best rate higher), it is stored in Sequence.variant_winners
and all later sends of that step use it.
"""

import hashlib
import math
import warnings
from dataclasses import dataclass

from crm.models import Activity
from sequences.models import Enrollment, OutboundMessage, Sequence

MIN_SAMPLE = 100
ALPHA = 0.05


@dataclass(frozen=True)
class VariantStats:
    key: str
    sent: int
    successes: int

    @property
    def rate(self) -> float:
        return self.successes / self.sent if self.sent else 0.0


def variant_for(enrollment: Enrollment, step: dict, pinned: str = "") -> dict | None:
    """The variant this enrollment gets at this step: the winner once chosen, else its bucket.

    `pinned`: the variant already on the ledger row (a retry resends what was chosen).
    """
    variants = step.get("config", {}).get("variants") or []
    if not variants:
        return None
    winner = pinned or (enrollment.sequence.variant_winners or {}).get(step["key"])
    chosen = next((variant for variant in variants if variant["key"] == winner), None)
    return chosen or variants_bucket(variants, f"{enrollment.pk}:{step['key']}")


def variants_bucket(variants: list[dict], seed: str) -> dict:
    """Pick a variant by a stable hash of `seed`, in proportion to the splits."""
    point = int(hashlib.sha256(seed.encode()).hexdigest(), 16) % 100
    total = 0
    for variant in variants:
        total += variant["split"]
        if point < total:
            return variant
    return variants[-1]


def is_significant(best: VariantStats, other: VariantStats) -> bool:
    """Two-proportion z-test: is best's rate higher than other's at 95% confidence?

    statsmodels' pooled z-test, two-sided: p < 0.05 and best ahead, i.e. z >= 1.96.
    No test when every send succeeded or none did (no spread: z is undefined).
    """
    # statsmodels (with scipy) costs about a second to import: loaded only when deciding.
    from statsmodels.stats.proportion import proportions_ztest

    if best.rate <= other.rate:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 when there is no spread
        _, p_value = proportions_ztest([best.successes, other.successes], [best.sent, other.sent])
    return math.isfinite(p_value) and p_value < ALPHA


def variant_winner_pick(stats: list[VariantStats], min_sample: int = MIN_SAMPLE) -> str:
    """The key of the variant that significantly beats all others, or "" (not yet)."""
    if len(stats) < 2 or any(item.sent < min_sample for item in stats):
        return ""
    best = max(stats, key=lambda item: item.rate)
    others = [item for item in stats if item is not best]
    return best.key if all(is_significant(best, other) for other in others) else ""


def variant_stats(sequence: Sequence, step: dict) -> list[VariantStats]:
    """Sends and successes (clicks or conversions) per variant of one step."""
    rows = list(
        OutboundMessage.objects.filter(
            enrollment__sequence=sequence, step=step["key"], state=OutboundMessage.State.SENT
        )
        .exclude(variant="")
        .values_list("uuid", "variant", "enrollment__state")
    )
    if step["config"].get("winner_by", "click") == "goal":
        won = {str(uuid) for uuid, _, state in rows if state == Enrollment.State.CONVERTED}
    else:
        won = _clicked({str(uuid) for uuid, _, _ in rows})
    return [
        VariantStats(
            key=variant["key"],
            sent=sum(1 for _, key, _ in rows if key == variant["key"]),
            successes=sum(1 for uuid, key, _ in rows if key == variant["key"] and str(uuid) in won),
        )
        for variant in step["config"]["variants"]
    ]


def _clicked(uuids: set[str]) -> set[str]:
    """The message uuids among these with at least one recorded click."""
    clicks = Activity.objects.filter(
        kind=Activity.Kind.EMAIL_CLICKED, properties__message_uuid__in=sorted(uuids)
    ).values_list("properties__message_uuid", flat=True)
    return {str(value) for value in clicks}


def variant_winners_decide() -> int:
    """Choose the winner of every undecided A/B step of active sequences; return how many."""
    decided = 0
    sequences = Sequence.objects.filter(
        status=Sequence.Status.ACTIVE, current_version__isnull=False
    ).select_related("current_version")
    for sequence in sequences:
        winners = dict(sequence.variant_winners or {})
        for step in sequence.current_version.steps:
            if not step.get("config", {}).get("variants") or step["key"] in winners:
                continue
            min_sample = step["config"].get("min_sample", MIN_SAMPLE)
            winner = variant_winner_pick(variant_stats(sequence, step), min_sample)
            if winner:
                winners[step["key"]] = winner
                decided += 1
        if winners != sequence.variant_winners:
            Sequence.objects.filter(pk=sequence.pk).update(variant_winners=winners)
    return decided
