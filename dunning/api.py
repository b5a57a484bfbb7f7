"""Read-only API over the outbox, so other systems can see what went out."""

from rest_framework import serializers, viewsets

from accounts.api import filter_by_params

from .models import Notice


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


class NoticeViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Notice.objects.select_related("step").prefetch_related("lines__invoice")
    serializer_class = NoticeSerializer

    def get_queryset(self):
        queryset = filter_by_params(
            super().get_queryset(),
            self.request.query_params,
            {
                "customer": "customer",
                "status": "status",
                "channel": "channel",
                "step": "step",
                "planned_from": "planned_on__gte",
                "planned_to": "planned_on__lte",
            },
        )
        invoice = self.request.query_params.get("invoice")
        if invoice:
            queryset = queryset.filter(lines__invoice=invoice)
        return queryset


def register(router) -> None:
    router.register("notices", NoticeViewSet)
