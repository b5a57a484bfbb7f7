"""Read-only API over the outbox, so other systems can see what went out."""

import django_filters
from rest_framework import serializers, viewsets

from accounts.api import IdFilter, LedgerFilterSet, LedgerViews

from .models import Channel, Notice


class NoticeSerializer(serializers.ModelSerializer):
    step = serializers.StringRelatedField()
    invoices = serializers.SerializerMethodField()

    class Meta:
        model = Notice
        fields = [
            "id",
            "customer",
            "step",
            "channel",
            "status",
            "planned_on",
            "not_before_at",
            "reason",
            "recipient",
            "subject",
            "body_text",
            "provider_message_id",
            "sent_at",
            "delivered_at",
            "invoices",
        ]

    def get_invoices(self, notice) -> list[str]:
        return [line.invoice.number for line in notice.lines.all()]


class NoticeFilter(LedgerFilterSet):
    customer = IdFilter(field_name="customer")
    status = django_filters.ChoiceFilter(choices=Notice.Status.choices)
    channel = django_filters.ChoiceFilter(choices=Channel.choices)
    step = IdFilter(field_name="step")
    planned_from = django_filters.DateFilter(field_name="planned_on", lookup_expr="gte")
    planned_to = django_filters.DateFilter(field_name="planned_on", lookup_expr="lte")
    invoice = IdFilter(field_name="lines__invoice", distinct=True)

    class Meta:
        model = Notice
        fields = []


class NoticeViewSet(LedgerViews, viewsets.ReadOnlyModelViewSet):
    queryset = Notice.objects.select_related("step").prefetch_related("lines__invoice")
    serializer_class = NoticeSerializer
    filterset_class = NoticeFilter


def register(router) -> None:
    router.register("notices", NoticeViewSet)
