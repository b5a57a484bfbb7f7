"""REST API for intake: batches and their rejected rows (read)."""

from rest_framework import serializers, viewsets

from accounts.api import filter_by_params

from .models import IntakeBatch, Rejection


class IntakeBatchSerializer(serializers.ModelSerializer):
    created_by = serializers.StringRelatedField()
    profile = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = IntakeBatch
        fields = [
            "id",
            "source",
            "kind",
            "profile",
            "filename",
            "is_dry_run",
            "status",
            "error",
            "rows_read",
            "created",
            "updated",
            "unchanged",
            "rejected",
            "created_by",
            "started_at",
            "finished_at",
        ]


class RejectionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Rejection
        fields = [
            "id",
            "batch",
            "row_number",
            "raw",
            "errors",
            "reason",
            "status",
            "resolution",
            "resolved_at",
            "created_at",
        ]


class IntakeBatchViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = IntakeBatch.objects.select_related("profile", "created_by")
    serializer_class = IntakeBatchSerializer

    def get_queryset(self):
        return filter_by_params(
            super().get_queryset(),
            self.request.query_params,
            {
                "source": "source",
                "kind": "kind",
                "status": "status",
                "started_since": "started_at__gte",
            },
        )


class RejectionViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Rejection.objects.all()
    serializer_class = RejectionSerializer

    def get_queryset(self):
        return filter_by_params(
            super().get_queryset(),
            self.request.query_params,
            {"batch": "batch", "status": "status"},
        )


def register(router) -> None:
    router.register("intake-batches", IntakeBatchViewSet)
    router.register("rejections", RejectionViewSet)
