from rest_framework import serializers

from accounts.models import ApiKey
from transcription.models import Segment, Session


class StreamTokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    expires_at = serializers.DateTimeField()
    expires_in = serializers.IntegerField()


class SegmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Segment
        fields = ["index", "start", "end", "text", "reason", "language", "words"]


class SessionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Session
        fields = [
            "id",
            "started_at",
            "ended_at",
            "status",
            "close_reason",
            "language",
            "engine",
            "sample_rate",
            "audio_seconds",
        ]


class SessionDetailSerializer(SessionSerializer):
    segments = SegmentSerializer(many=True, read_only=True)

    class Meta(SessionSerializer.Meta):
        fields = [*SessionSerializer.Meta.fields, "segments"]


class UsageDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    audio_seconds = serializers.FloatField()


class UsageSerializer(serializers.Serializer):
    month_start = serializers.DateTimeField()
    used_seconds = serializers.FloatField()
    quota_seconds = serializers.FloatField()
    days = UsageDaySerializer(many=True)


class ApiKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = ["prefix", "name", "created_at", "last_used_at", "revoked_at"]


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, default="default")


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(help_text="The full key. Shown in this response only; it is never stored.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class SessionFilterSerializer(serializers.Serializer):
    since = serializers.DateField(required=False, help_text="Sessions started on or after this day (UTC).")
    until = serializers.DateField(required=False, help_text="Sessions started on or before this day (UTC).")
