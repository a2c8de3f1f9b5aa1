from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import ApiKey
from transcription.models import FileTranscription, Segment, Session, WebhookDelivery


class StreamTokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    expires_at = serializers.DateTimeField()
    expires_in = serializers.IntegerField()


class SegmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Segment
        fields = ["index", "start", "end", "text", "reason", "language", "words", "channel"]


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
            "channels",
            "audio_seconds",
            "source",
            "protocol",
            "label",
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


class SessionDefaultsSerializer(serializers.Serializer):
    """The tenant's session defaults; null (or "") leaves the field to the server."""

    default_model = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=50,
        help_text="A model sessions get when they name none and it speaks their language (GET /v1/models).",
    )  # fmt: skip
    default_language = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=10,
        help_text="A language code ('zh') or 'auto', for sessions that name none.",
    )  # fmt: skip
    default_endpointing_ms = serializers.IntegerField(
        required=False, allow_null=True, help_text="Trailing silence that ends an utterance, in ms."
    )
    default_final_model = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=50,
        help_text="Two-pass: a Whisper model that decodes each final again, more accurate at more CPU cost, "
        "for sessions that name no final_model and whose language it speaks (else the server's, else none).",
    )  # fmt: skip


class EffectiveSessionSerializer(serializers.Serializer):
    model = serializers.CharField()
    language = serializers.CharField()
    endpointing_ms = serializers.IntegerField()
    final_model = serializers.CharField(help_text='The model that decodes finals; "": the session\'s own (one pass).')


class TenantSettingsSerializer(SessionDefaultsSerializer):
    effective = EffectiveSessionSerializer(
        read_only=True, help_text="What a session that names none of these gets now, defaults and server together."
    )


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


class TranscriptionCreateSerializer(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=False, help_text="Audio: WAV, FLAC, MP3, OGG/Opus, WebM or M4A (multipart/form-data)."
    )
    language = serializers.CharField(required=False, max_length=10, help_text="e.g. 'en'; 'auto' to detect.")
    model = serializers.CharField(required=False, max_length=50, help_text="A model name from the catalogue.")
    word_timestamps = serializers.BooleanField(required=False, default=False)
    prompt = serializers.CharField(required=False, max_length=200, allow_blank=True)
    hotwords = serializers.CharField(
        required=False, max_length=1100, allow_blank=True, help_text="Comma-separated words to favour."
    )
    endpointing_ms = serializers.IntegerField(required=False, help_text="Silence that ends an utterance.")
    multichannel = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Transcribe each of the file's channels on its own (up to 8): segments carry their channel "
        "(0-based), and the audio is metered once per channel.",
    )
    callback_url = serializers.URLField(
        required=False,
        max_length=2048,
        help_text="Where to POST the finished job (as GET /api/v1/transcriptions/{id} shows it), signed with "
        "the workspace's webhook secret: X-Asr-Timestamp and X-Asr-Signature (see the README).",
    )
    callback_method = serializers.ChoiceField(choices=["POST", "PUT"], required=False, default="POST")

    def engine_options(self) -> dict:
        """The validated fields in the form a streaming ``start`` message has."""
        options = {k: v for k, v in self.validated_data.items() if k not in ("file", "callback_url", "callback_method")}
        if "hotwords" in options:
            options["hotwords"] = [w.strip() for w in options["hotwords"].split(",") if w.strip()]
        return options


class TranscriptionErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class CallbackSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = ["url", "status", "attempts", "last_status_code", "delivered_at"]


class TranscriptionSerializer(serializers.ModelSerializer):
    progress = serializers.FloatField(read_only=True, help_text="Share of the audio processed, 0 to 1.")
    error = serializers.SerializerMethodField()
    callback = serializers.SerializerMethodField(help_text="The callback its request asked for, and how it went.")
    session_id = serializers.UUIDField(read_only=True, help_text="The session holding the segments.")

    class Meta:
        model = FileTranscription
        fields = [
            "id",
            "status",
            "progress",
            "filename",
            "size_bytes",
            "format",
            "duration_s",
            "processed_s",
            "error",
            "callback",
            "session_id",
            "created_at",
            "started_at",
            "finished_at",
        ]

    @extend_schema_field(TranscriptionErrorSerializer(allow_null=True))
    def get_error(self, job: FileTranscription) -> dict | None:
        return {"code": job.error_code, "message": job.error_message} if job.error_code else None

    @extend_schema_field(CallbackSerializer(allow_null=True))
    def get_callback(self, job: FileTranscription) -> dict | None:
        try:
            return CallbackSerializer(job.callback).data
        except WebhookDelivery.DoesNotExist:
            return None


class TranscriptionDetailSerializer(TranscriptionSerializer):
    segments = SegmentSerializer(source="session.segments", many=True, read_only=True)

    class Meta(TranscriptionSerializer.Meta):
        fields = [*TranscriptionSerializer.Meta.fields, "segments"]


class RefusalSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
