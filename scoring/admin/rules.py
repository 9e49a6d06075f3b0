"""Scoring, handoff and demo routing rules, territories (marketing's setup), the score ledger."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from crm.admin.base import BigTableMixin, ReadOnlyMixin
from crm.admin.search import IndexedSearchMixin
from crm.conditions.widget import ConditionBuilderWidget
from scoring.conditions import condition_problems, rule_mode
from scoring.models import DemoRoutingRule, HandoffRule, ScoreChange, ScoringRule, Territory
from scoring.services.queue import enqueue_on_commit

REFRESH_ALL_FIT_TASK = "scoring.tasks.refresh_all_fit_scores_task"


class ScoringRuleForm(forms.ModelForm):
    """The rule, with its conditions drawn by the condition builder (crm.conditions)."""

    class Meta:
        model = ScoringRule
        fields = (
            "key",
            "name",
            "description",
            "category",
            "is_active",
            "points",
            "conditions",
            "activity_kind",
            "cap_points",
            "cap_period_days",
            "halve_after_days",
            "expire_after_days",
            "min_silence_days",
        )

    def clean(self):
        data = super().clean()
        category = data.get("category") or self.instance.category
        for problem in condition_problems(data.get("conditions"), category):
            self.add_error("conditions", problem)
        return data


@admin.register(ScoringRule)
class ScoringRuleAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "key",
        "category",
        "activity_kind",
        "points",
        "cap",
        "decay",
        "is_active",
    )
    list_filter = ("category", "is_active", "activity_kind")
    search_fields = ("key", "name", "activity_kind")
    ordering = ("category", "key")
    list_select_related = ()
    form = ScoringRuleForm
    actions = ("reapply_fit_rules",)
    fieldsets = (
        (None, {"fields": ("key", "name", "description", "category", "is_active", "points")}),
        (
            "Conditions",
            {
                "fields": ("conditions",),
                "description": "Engagement rules test the activity (property path contains "
                "/pricing); fit rules test the contact and its company (job title contains "
                "head). Save after changing the category to switch between the two.",
            },
        ),
        (
            "Engagement",
            {
                "fields": (
                    "activity_kind",
                    ("cap_points", "cap_period_days"),
                    ("halve_after_days", "expire_after_days"),
                    "min_silence_days",
                ),
                "description": "Only for engagement rules.",
            },
        ),
    )

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The builder's mode follows the saved category; a new rule starts as engagement.
        mode = rule_mode(obj.category if obj else ScoringRule.Category.ENGAGEMENT)
        widgets = {**kwargs.pop("widgets", {}), "conditions": ConditionBuilderWidget(mode=mode)}
        return super().get_form(request, obj, change=change, widgets=widgets, **kwargs)

    @admin.display(description="cap")
    def cap(self, rule: ScoringRule) -> str:
        if rule.cap_points is None:
            return "—"
        return f"{rule.cap_points} per {rule.cap_period_days} d"

    @admin.display(description="decay")
    def decay(self, rule: ScoringRule) -> str:
        parts = []
        if rule.halve_after_days:
            parts.append(f"halves after {rule.halve_after_days} d")
        if rule.expire_after_days:
            parts.append(f"expires after {rule.expire_after_days} d")
        return ", ".join(parts) or "—"

    @admin.action(description="Re-apply fit rules to every contact", permissions=["change"])
    def reapply_fit_rules(self, request, queryset):
        # Every contact is a lot of work for a request: a background task does it.
        enqueue_on_commit(REFRESH_ALL_FIT_TASK)
        self.message_user(
            request,
            "Fit rules are being re-applied to every contact in the background.",
            messages.SUCCESS,
        )


@admin.register(HandoffRule)
class HandoffRuleAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "key",
        "score_threshold",
        "signals",
        "lifecycle_stage",
        "sla_minutes",
        "on_sla_breach",
        "is_active",
        "position",
    )
    list_filter = ("is_active", "on_sla_breach")
    search_fields = ("key", "name")
    ordering = ("position", "key")
    list_select_related = ("lifecycle_stage",)
    filter_horizontal = ("signal_rules",)
    fieldsets = (
        (None, {"fields": ("key", "name", "description", "is_active", "position")}),
        (
            "When to hand off",
            {"fields": ("score_threshold", "signal_rules", "signal_window_days")},
        ),
        (
            "Lifecycle and hysteresis",
            {"fields": ("lifecycle_stage", "recycle_stage", "rearm_margin", "cooldown_days")},
        ),
        ("Service level", {"fields": ("sla_minutes", "on_sla_breach", "sla_manager")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("signal_rules")

    @admin.display(description="signals")
    def signals(self, rule: HandoffRule) -> str:
        return ", ".join(signal.name for signal in rule.signal_rules.all()) or "—"


@admin.register(Territory)
class TerritoryAdmin(admin.ModelAdmin):
    list_display = ("name", "key", "countries", "people", "is_active", "position")
    list_filter = ("is_active",)
    search_fields = ("key", "name", "countries")
    ordering = ("position", "key")
    list_select_related = ()
    filter_horizontal = ("users",)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("users")

    @admin.display(description="salespeople")
    def people(self, territory: Territory) -> str:
        return ", ".join(user.get_username() for user in territory.users.all()) or "—"


@admin.register(DemoRoutingRule)
class DemoRoutingRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "key", "segment", "routes_to", "is_active", "position")
    list_filter = ("is_active",)
    search_fields = ("key", "name", "segment__name")
    ordering = ("position", "key")
    list_select_related = ("segment", "assignee")
    autocomplete_fields = ("segment",)
    filter_horizontal = ("users",)
    fieldsets = (
        (None, {"fields": ("key", "name", "is_active", "position", "segment")}),
        (
            "Who gets the demo",
            {
                "fields": ("assignee", "users"),
                "description": "The assignee takes every demo from the segment; without one, "
                "the people below take turns; without them, the Sales group does.",
            },
        ),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("users")

    @admin.display(description="routes to")
    def routes_to(self, rule: DemoRoutingRule) -> str:
        if rule.assignee is not None:
            return rule.assignee.get_username()
        people = [user.get_username() for user in rule.users.all()]
        return f"round robin: {', '.join(people)}" if people else "round robin in Sales"


@admin.register(ScoreChange)
class ScoreChangeAdmin(IndexedSearchMixin, ReadOnlyMixin, BigTableMixin, admin.ModelAdmin):
    list_display = ("occurred_at", "contact", "rule", "part", "reason", "points", "activity")
    list_filter = ("part", "reason", "rule")
    search_fields = ("=contact__email", "=rule__key")
    search_contact_field = "contact"
    search_exact_fields = ("rule__key",)
    ordering = ("-pk",)
    list_select_related = ("contact", "rule", "activity")
    raw_id_fields = ("contact", "activity", "reverses")


def validation_message(exc: ValidationError) -> str:
    """One line for message_user from a service's ValidationError."""
    return " ".join(exc.messages)
