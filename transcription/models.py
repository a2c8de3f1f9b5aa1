"""Streaming sessions and the final segments they produced."""

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import ApiKey, Tenant


class Session(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        INTERRUPTED = "interrupted", "Interrupted (resumable)"
        CLOSED = "closed", "Closed"

    class CloseReason(models.TextChoices):
        STOP = "stop", "Client stopped"
        DISCONNECT = "disconnect", "Connection dropped"
        IDLE_TIMEOUT = "idle_timeout", "Idle timeout"
        SESSION_LIMIT = "session_limit", "Session length limit"
        QUOTA_EXCEEDED = "quota_exceeded", "Monthly quota used up"
        FORBIDDEN = "forbidden", "Account suspended or key revoked"
        BAD_REQUEST = "bad_request", "Bad message or audio"
        INTERNAL_ERROR = "internal_error", "Internal error"
        LOST = "lost", "Server lost the session"

    class Source(models.TextChoices):
        STREAM = "stream", "Live stream"
        FILE = "file", "File upload"

    class Protocol(models.TextChoices):
        """The API the client spoke: each is an adapter over the same session core."""

        V1 = "v1", "asrplatform WebSocket v1"
        REST = "rest", "asrplatform REST"
        OPENAI = "openai", "OpenAI audio API"
        OPENAI_REALTIME = "openai-realtime", "OpenAI Realtime"
        DEEPGRAM = "deepgram", "Deepgram"
        FUNASR = "funasr", "FunASR WebSocket"
        TWILIO = "twilio", "Twilio Media Streams"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="sessions")
    source = models.CharField(max_length=6, choices=Source.choices, default=Source.STREAM)
    protocol = models.CharField(max_length=16, choices=Protocol.choices, default=Protocol.V1)
    api_key = models.ForeignKey(ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="sessions")
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    close_reason = models.CharField(max_length=20, choices=CloseReason.choices, blank=True)
    language = models.CharField(max_length=10, default="en")
    engine = models.CharField(max_length=50, blank=True)
    sample_rate = models.PositiveIntegerField(default=16000)
    # The audio as the client sent it (start's encoding: pcm_s16le, opus, mulaw…); blank for files.
    encoding = models.CharField(max_length=12, blank=True, default="")
    # Channels transcribed each on its own (multichannel); 1 for mono or mixed-down audio.
    channels = models.PositiveSmallIntegerField(default=1)
    # What the client's own system calls it, shown in the session list: a Twilio call's SID.
    label = models.CharField(max_length=100, blank=True, default="")
    # Metered seconds: the audio's duration once per channel transcribed (see duration_s).
    audio_seconds = models.FloatField(default=0.0)
    # SHA-256 of the current resume token (sent once, in 'ready'); when the connection dropped.
    resume_token_hash = models.CharField(max_length=64, blank=True)
    interrupted_at = models.DateTimeField(null=True, blank=True)
    # When its owner last said the session is alive (start, each usage flush, interrupt, resume):
    # a row left open by a crashed process goes stale here, and services.session_sweep_stale closes it.
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["tenant", "-started_at"]),
            # The sweeper's lookup; only open rows, a handful, however many closed ones pile up.
            models.Index(fields=["last_seen_at"], condition=~Q(status="closed"), name="session_open_last_seen"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.tenant})"

    @property
    def duration_s(self) -> float:
        """How long the audio lasted (``audio_seconds`` counts it once per channel transcribed)."""
        return self.audio_seconds / max(self.channels, 1)


class Segment(models.Model):
    """One final utterance. Unique per (session, index) so a retried write never duplicates it."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="segments")
    index = models.PositiveIntegerField()
    start = models.FloatField()
    end = models.FloatField()
    text = models.TextField(blank=True)
    reason = models.CharField(max_length=12)
    # The language the text is in (detected when the session asked for "auto"); "" if unknown.
    language = models.CharField(max_length=10, blank=True, default="")
    # [{"word", "start", "end", "probability"}] in session seconds, when the session asked for them.
    words = models.JSONField(null=True, blank=True)
    # How sure the decoder was (exp of its mean token log-probability), when the model says; low
    # values flag finals worth a second look.
    confidence = models.FloatField(null=True, blank=True)
    # The audio channel it was heard on (0-based) in a multichannel session; null when mixed down.
    channel = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "index"]
        constraints = [models.UniqueConstraint(fields=["session", "index"], name="unique_segment_per_session")]

    def __str__(self) -> str:
        return f"{self.session_id}#{self.index}"


class FileTranscription(models.Model):
    """An uploaded audio file being transcribed offline; its finals go to a ``file`` session.

    The session carries the segments and the metered audio seconds, so files count against the
    same monthly quota and show up in the same transcript views as live streams. The upload is
    deleted once the job ends: customer audio is kept no longer than it is needed.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="file_transcriptions")
    api_key = models.ForeignKey(
        ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="file_transcriptions"
    )
    session = models.OneToOneField(Session, on_delete=models.CASCADE, related_name="file_transcription")
    audio = models.FileField(upload_to="uploads/%Y/%m/", blank=True)
    filename = models.CharField(max_length=255, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    format = models.CharField(max_length=40, blank=True)
    options = models.JSONField(default=dict)  # the validated start options (language, model, ...)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED, db_index=True)
    duration_s = models.FloatField(null=True, blank=True)  # from the container header until decoded
    processed_s = models.FloatField(default=0.0)
    error_code = models.CharField(max_length=32, blank=True)
    error_message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.filename or self.id} ({self.tenant})"

    @property
    def progress(self) -> float:
        """Share of the audio processed, 0..1 (1 once done)."""
        if self.status == self.Status.DONE:
            return 1.0
        if not self.duration_s:
            return 0.0
        return max(0.0, min(1.0, self.processed_s / self.duration_s))


class WebhookDelivery(models.Model):
    """The callback a file job's request asked for: its result, signed, sent to the client's URL.

    Stored so that it survives a restart: every server process's delivery loop
    (transcription/webhooks.py) sends the due ones once their job has ended, and again with
    exponential backoff until one attempt gets a 2xx or the attempts run out.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # waiting for its job, or for its next attempt
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"  # every attempt failed

    class Payload(models.TextChoices):
        DEEPGRAM = "deepgram", "Deepgram's response JSON"
        REST = "rest", "asrplatform's transcription JSON"

    job = models.OneToOneField(FileTranscription, on_delete=models.CASCADE, related_name="callback")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="webhook_deliveries")
    url = models.URLField(max_length=2048)
    method = models.CharField(max_length=4, default="POST")
    payload = models.CharField(max_length=10, choices=Payload.choices)
    context = models.JSONField(default=dict)  # what the payload needs besides the job (Deepgram's sha256, ...)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)  # None: no HTTP answer
    last_error = models.CharField(max_length=200, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # The delivery loop's lookup: only the pending rows, however many delivered ones pile up.
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="webhook_pending_due"),
        ]

    def __str__(self) -> str:
        return f"callback of {self.job_id} ({self.status})"
