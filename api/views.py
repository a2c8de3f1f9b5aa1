"""REST API v1: thin views over the accounts and transcription services and selectors."""

from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import Http404
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.models import ApiKey
from api import serializers
from api.authentication import IsTenantMember, IsTenantOwner, IsTenantOwnerToChange, request_caller
from asrplatform.edge.body_limits import upload_max_bytes
from transcription import file_jobs, selectors, services, webhook_targets, webhooks
from transcription.engine.config import SessionDefaults
from transcription.models import FileTranscription, Session, WebhookDelivery

STREAM_TOKEN_TTL_S = int(account_services.STREAM_TOKEN_TTL.total_seconds())


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class StreamTokenView(APIView):
    permission_classes = [IsTenantMember]

    @extend_schema(request=None, responses={201: serializers.StreamTokenSerializer})
    def post(self, request: Request) -> Response:
        user = request.user if isinstance(request.user, User) else None  # None: a key, not a person
        raw, token = account_services.stream_token_mint(tenant=request_caller(request).tenant, user=user)
        data = {"token": raw, "expires_at": token.expires_at, "expires_in": STREAM_TOKEN_TTL_S}
        return Response(serializers.StreamTokenSerializer(data).data, status=status.HTTP_201_CREATED)


@extend_schema(parameters=[serializers.SessionFilterSerializer])
class SessionListView(generics.ListAPIView):
    permission_classes = [IsTenantMember]
    serializer_class = serializers.SessionSerializer
    pagination_class = Pagination

    def get_queryset(self) -> QuerySet[Session]:
        filters = serializers.SessionFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        tenant = request_caller(self.request).tenant
        sessions = selectors.session_list(tenant_id=tenant.pk).order_by("-started_at", "id")
        if "since" in filters.validated_data:
            sessions = sessions.filter(started_at__date__gte=filters.validated_data["since"])
        if "until" in filters.validated_data:
            sessions = sessions.filter(started_at__date__lte=filters.validated_data["until"])
        return sessions


class SessionDetailView(generics.RetrieveAPIView):
    permission_classes = [IsTenantMember]
    serializer_class = serializers.SessionDetailSerializer
    lookup_field = "id"

    def get_queryset(self) -> QuerySet[Session]:
        return selectors.session_list(tenant_id=request_caller(self.request).tenant.pk).prefetch_related("segments")


class UsageView(APIView):
    permission_classes = [IsTenantMember]

    @extend_schema(responses=serializers.UsageSerializer)
    def get(self, request: Request) -> Response:
        tenant = request_caller(request).tenant
        data = {
            "month_start": selectors.month_start(),
            "used_seconds": selectors.usage_seconds_this_month(tenant_id=tenant.pk),
            "quota_seconds": float(tenant.monthly_audio_seconds_quota),
            "days": [{"date": d, "audio_seconds": s} for d, s in selectors.usage_per_day(tenant_id=tenant.pk)],
        }
        return Response(serializers.UsageSerializer(data).data)


class SettingsView(APIView):
    """The tenant's session defaults: every member may read them, the owner (or a key) change them."""

    permission_classes = [IsTenantOwnerToChange]

    @extend_schema(responses=serializers.TenantSettingsSerializer)
    def get(self, request: Request) -> Response:
        return Response(_settings_body(selectors.session_defaults_of(request_caller(request).tenant)))

    @extend_schema(
        request=serializers.SessionDefaultsSerializer,
        responses={200: serializers.TenantSettingsSerializer, 400: serializers.RefusalSerializer},
    )
    def patch(self, request: Request) -> Response:
        form = serializers.SessionDefaultsSerializer(data=request.data)
        unknown = sorted(set(request.data) - set(form.fields)) if isinstance(request.data, dict) else []
        if unknown:
            detail = f"Unknown field(s): {', '.join(unknown)}. Allowed: {', '.join(form.fields)}."
            return Response({"code": "invalid_settings", "detail": detail}, status=status.HTTP_400_BAD_REQUEST)
        form.is_valid(raise_exception=True)
        tenant = request_caller(request).tenant
        current, changes = selectors.session_defaults_of(tenant), form.validated_data
        try:
            defaults = services.tenant_session_defaults_update(
                tenant_id=tenant.pk,
                model=changes.get("default_model", current.model) or "",
                language=changes.get("default_language", current.language) or "",
                endpointing_ms=changes.get("default_endpointing_ms", current.endpointing_ms),
                final_model=changes.get("default_final_model", current.final_model) or "",
            )
        except services.DefaultsRefused as refusal:
            return Response({"code": "invalid_settings", "detail": str(refusal)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(_settings_body(defaults))


def _settings_body(defaults: SessionDefaults) -> dict[str, Any]:
    effective = selectors.session_defaults_effective(defaults=defaults)
    data = {
        "default_model": defaults.model or None,
        "default_language": defaults.language or None,
        "default_endpointing_ms": defaults.endpointing_ms,
        "default_final_model": defaults.final_model or None,
        "effective": {k: getattr(effective, k) for k in ("model", "language", "endpointing_ms", "final_model")},
    }
    return serializers.TenantSettingsSerializer(data).data


class ApiKeyListCreateView(APIView):
    permission_classes = [IsTenantOwner]

    @extend_schema(responses=serializers.ApiKeySerializer(many=True))
    def get(self, request: Request) -> Response:
        keys = account_selectors.api_key_list(tenant=request_caller(request).tenant)
        return Response(serializers.ApiKeySerializer(keys, many=True).data)

    @extend_schema(request=serializers.ApiKeyCreateSerializer, responses={201: serializers.ApiKeyCreatedSerializer})
    def post(self, request: Request) -> Response:
        form = serializers.ApiKeyCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        tenant = request_caller(request).tenant
        api_key, raw = account_services.api_key_create(tenant=tenant, name=form.validated_data["name"])
        api_key.key = raw  # type: ignore[attr-defined]
        return Response(serializers.ApiKeyCreatedSerializer(api_key).data, status=status.HTTP_201_CREATED)


class ApiKeyRevokeView(APIView):
    permission_classes = [IsTenantOwner]

    @extend_schema(request=None, responses=serializers.ApiKeySerializer)
    def post(self, request: Request, prefix: str) -> Response:
        try:
            api_key = account_services.api_key_revoke(tenant=request_caller(request).tenant, prefix=prefix)
        except ApiKey.DoesNotExist as exc:
            raise Http404 from exc
        return Response(serializers.ApiKeySerializer(api_key).data)


class TranscriptionListCreateView(generics.ListAPIView):
    """Upload an audio file to transcribe; list this tenant's file transcriptions."""

    permission_classes = [IsTenantMember]
    serializer_class = serializers.TranscriptionSerializer
    pagination_class = Pagination
    parser_classes = [MultiPartParser]

    def get_queryset(self) -> QuerySet[FileTranscription]:
        return selectors.file_job_list(tenant_id=request_caller(self.request).tenant.pk).select_related("callback")

    @extend_schema(
        request={"multipart/form-data": serializers.TranscriptionCreateSerializer},
        responses={
            202: serializers.TranscriptionSerializer,
            400: serializers.RefusalSerializer,
            413: serializers.RefusalSerializer,
            429: serializers.RefusalSerializer,
        },
    )
    def post(self, request: Request) -> Response:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
        if declared > upload_max_bytes():  # also checked in front of Django (asrplatform.edge) before the body
            return _refusal(
                file_jobs.JobRefused("too_large", f"Files may be at most {settings.ASR_FILE_MAX_BYTES} bytes.", 413)
            )
        form = serializers.TranscriptionCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        key = request.auth if isinstance(request.auth, ApiKey) else None
        job_arguments: dict[str, Any] = {
            "tenant_id": request_caller(request).tenant.pk,
            "api_key_id": key.pk if key else None,
            "upload": form.validated_data["file"],
            "options": form.engine_options(),
        }
        try:
            if "callback_url" in form.validated_data:
                callback = webhooks.callback_request(
                    url=form.validated_data["callback_url"],
                    method=form.validated_data["callback_method"],
                    payload=WebhookDelivery.Payload.REST,
                )
                job = webhooks.job_create_with_callback(
                    **job_arguments, protocol=Session.Protocol.REST, callback=callback
                )
            else:
                job = file_jobs.job_create(**job_arguments)
        except webhook_targets.TargetRefused as refusal:
            return Response({"code": "bad_callback", "detail": str(refusal)}, status=status.HTTP_400_BAD_REQUEST)
        except file_jobs.JobRefused as refusal:
            return _refusal(refusal)
        location = reverse("api-transcription-detail", kwargs={"id": job.pk})
        data = serializers.TranscriptionSerializer(job).data
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": location})


class TranscriptionDetailView(generics.RetrieveAPIView):
    """Status, progress and (as they are stored) the segments of one file transcription."""

    permission_classes = [IsTenantMember]
    serializer_class = serializers.TranscriptionDetailSerializer
    lookup_field = "id"

    def get_queryset(self) -> QuerySet[FileTranscription]:
        tenant = request_caller(self.request).tenant
        jobs = selectors.file_job_list(tenant_id=tenant.pk).select_related("callback")
        return jobs.prefetch_related("session__segments")


def _refusal(refusal: "file_jobs.JobRefused") -> Response:
    return Response({"code": refusal.code, "detail": refusal.message}, status=refusal.status)
