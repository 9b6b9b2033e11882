"""The serializer base: read-only bookkeeping fields and no silently ignored input."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

BOOKKEEPING_FIELDS = ("id", "version", "created_at", "updated_at")


class TrackedSerializer(serializers.ModelSerializer):
    """Every field of the model; relations read and written as ids."""

    class Meta:
        fields = "__all__"
        read_only_fields = BOOKKEEPING_FIELDS

    def to_internal_value(self, data: Any) -> Any:
        # A misspelt field would otherwise vanish and the write "succeed" without it.
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)
