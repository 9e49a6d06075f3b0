"""What the sequence endpoints read and write."""

from rest_framework import serializers

from crm.api.filters import MAX_ID
from crm.api.serializers import StrictSerializer
from sequences.models import Enrollment, Sequence


class SequenceSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(
        source="current_version.number",
        read_only=True,
        allow_null=True,
        help_text="The published version new enrollments get; null until first activated.",
    )
    topic = serializers.SlugRelatedField(
        slug_field="key", read_only=True, allow_null=True, help_text="Null if transactional."
    )
    owner = serializers.IntegerField(source="owner_id", read_only=True, allow_null=True)

    class Meta:
        model = Sequence
        fields = ("key", "name", "status", "version", "topic", "is_transactional", "owner")
        read_only_fields = fields


class EnrollRequestSerializer(StrictSerializer):
    """Who to enroll: a contact's id or email (one of them)."""

    needs_one_of = ("contact", "email")

    contact = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, required=False, help_text="A contact's id."
    )
    email = serializers.EmailField(
        max_length=254, required=False, allow_blank=True, help_text="A contact's email."
    )

    def validate(self, attrs: dict) -> dict:
        if not (attrs.get("contact") or attrs.get("email")):
            raise serializers.ValidationError(
                {"contact": ["Give the contact's id (contact) or email."]}
            )
        return attrs


class EnrollmentSerializer(serializers.ModelSerializer):
    sequence = serializers.SlugRelatedField(slug_field="key", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True)

    class Meta:
        model = Enrollment
        fields = ("id", "contact", "sequence", "version", "state", "current_step", "enrolled_at")
        read_only_fields = fields
