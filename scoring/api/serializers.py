"""What the handoff endpoints read and write."""

from django.contrib.auth import get_user_model
from rest_framework import serializers

from scoring.models import Handoff


class HandoffReasonSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["signal", "score"])
    label = serializers.CharField()
    points = serializers.IntegerField(required=False)
    rule = serializers.CharField(required=False)
    at = serializers.DateTimeField(required=False)


class HandoffSerializer(serializers.ModelSerializer):
    contact_email = serializers.EmailField(source="contact.email", read_only=True)
    rule = serializers.SlugRelatedField(slug_field="key", read_only=True)
    reasons = HandoffReasonSerializer(many=True, read_only=True)
    is_open = serializers.BooleanField(read_only=True)

    class Meta:
        model = Handoff
        fields = (
            "id",
            "contact",
            "contact_email",
            "rule",
            "status",
            "is_open",
            "owner",
            "routed_by",
            "score",
            "engagement_score",
            "fit_score",
            "reasons",
            "created_at",
            "sla_due_at",
            "notified_at",
            "claimed_at",
            "contacted_at",
            "sla_breached_at",
            "closed_at",
            "closed_by",
            "close_reason",
            "deal",
        )
        read_only_fields = fields


def _staff_users():
    return get_user_model().objects.filter(is_active=True, is_staff=True)


class HandoffActionSerializer(serializers.Serializer):
    """Who acts (a staff user's id); claim needs one, the others record it when given."""

    user = serializers.PrimaryKeyRelatedField(
        queryset=_staff_users(), required=False, allow_null=True
    )


class HandoffClaimSerializer(serializers.Serializer):
    user = serializers.PrimaryKeyRelatedField(
        queryset=_staff_users(), help_text="The salesperson taking the lead."
    )


class HandoffCloseSerializer(HandoffActionSerializer):
    reason = serializers.CharField(
        trim_whitespace=True, help_text="Why: marketing reads it to improve scoring."
    )
