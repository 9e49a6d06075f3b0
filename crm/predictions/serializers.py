"""The API's view of a contact's purchase prediction (on GET /api/v1/contacts/{id}/)."""

from rest_framework import serializers

from crm.predictions.models import ContactPrediction


class ContactPredictionSerializer(serializers.ModelSerializer):
    status = serializers.CharField(source="run.status", read_only=True)
    model = serializers.CharField(source="run.model", read_only=True)

    class Meta:
        model = ContactPrediction
        fields = (
            "status",
            "reason",
            "probability_active",
            "churn_risk",
            "expected_purchases_90d",
            "next_order_on",
            "predicted_value_12m",
            "value_percentile",
            "orders",
            "frequency",
            "recency_days",
            "tenure_days",
            "monetary_value",
            "last_order_at",
            "model",
            "computed_at",
        )
        read_only_fields = fields
