"""Browser pages: the dashboard, the recording page, its WebSocket token, and the tenant's transcripts."""

import hmac
import json
import uuid

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from prometheus_client import CONTENT_TYPE_LATEST

from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.credentials import parse_bearer
from accounts.decorators import MemberRequest, member_required
from accounts.forms import ApiKeyCreateForm
from accounts.models import Membership
from transcription import exports, selectors, services
from transcription import metrics as prometheus
from transcription.engine_settings import session_limits
from transcription.forms import LANGUAGE_NAMES, SessionDefaultsForm, language_choices
from transcription.models import Session

ENDPOINTING_CHOICES = (500, 800, 1200)
TRANSCRIPTS_PER_PAGE = 25
RECENT_SESSIONS = 5


@member_required
def dashboard(request: MemberRequest) -> HttpResponse:
    """The tenant's home page: its API keys (accounts), its usage and recent sessions (here).

    It lives here, not in accounts, because it reads transcription's data and accounts is the
    ground floor; key creation and revocation stay in accounts/views.py.
    """
    return render(request, "accounts/dashboard.html", _dashboard_context(request))


@never_cache
@require_POST
@member_required(owner=True)
def session_defaults_update(request: MemberRequest) -> HttpResponse:
    """The owner sets the workspace's session defaults; refused values show on the dashboard's form."""
    current = selectors.session_defaults_of(request.tenant)
    form = SessionDefaultsForm(request.POST, limits=session_limits(), current=current)
    if form.is_valid():
        try:
            services.tenant_session_defaults_update(
                tenant_id=request.tenant.pk,
                model=form.cleaned_data["default_model"],
                language=form.cleaned_data["default_language"],
                endpointing_ms=form.cleaned_data["default_endpointing_ms"],
                final_model=form.cleaned_data["default_final_model"],
            )
        except services.DefaultsRefused as refusal:
            form.add_error(None, str(refusal))
        else:
            messages.success(request, "Session defaults saved: they apply to sessions that start from now on.")
            return redirect("dashboard")
    return render(request, "accounts/dashboard.html", _dashboard_context(request, form), status=400)


def _dashboard_context(request: MemberRequest, defaults_form: SessionDefaultsForm | None = None) -> dict:
    tenant = request.tenant
    used = selectors.usage_seconds_this_month(tenant_id=tenant.pk)
    quota = tenant.monthly_audio_seconds_quota
    recent = selectors.session_list_with_segments(tenant_id=tenant.pk)[:RECENT_SESSIONS]
    context = {
        "tenant": tenant,
        "api_keys": account_selectors.api_key_list(tenant=tenant),
        "key_form": ApiKeyCreateForm(),
        "usage_seconds": used,
        "quota_seconds": quota,
        "usage_percent": min(100, round(100 * used / quota)) if quota else 100,
        "recent": [selectors.session_summarize(session=s) for s in recent],
        **_defaults_context(request, defaults_form),
    }
    return context


def _defaults_context(request: MemberRequest, form: SessionDefaultsForm | None) -> dict:
    defaults = selectors.session_defaults_of(request.tenant)
    if form is None and request.membership.role == Membership.Role.OWNER:
        form = SessionDefaultsForm(limits=session_limits(), current=defaults)
    effective = selectors.session_defaults_effective(defaults=defaults)
    return {
        "session_defaults": defaults,
        "defaults_form": form,
        "effective": effective,
        "effective_language": LANGUAGE_NAMES.get(effective.language, effective.language),
    }


@member_required
def record(request: MemberRequest) -> HttpResponse:
    """The recording page; its language and pause menus start at the workspace's defaults."""
    limits = session_limits()
    effective = selectors.session_defaults_effective(defaults=selectors.session_defaults_of(request.tenant))
    endpointing = sorted({*ENDPOINTING_CHOICES, effective.endpointing_ms})
    context = {
        "endpointing_choices": endpointing,
        "default_endpointing": effective.endpointing_ms,
        "language_choices": language_choices(limits, keep=effective.language),
        "default_language": effective.language,
        "token_url": reverse("stream_token"),
        "ws_path": "/ws/v1/transcribe",
    }
    return render(request, "transcription/record.html", context)


@never_cache
@require_POST
@member_required(json=True)
def stream_token(request: MemberRequest) -> JsonResponse:
    """A 60-second single-use token for the page's next WebSocket (CSRF-checked like any POST)."""
    raw, token = account_services.stream_token_mint(tenant=request.tenant, user=request.user)
    expires_in = round((token.expires_at - token.created_at).total_seconds())
    return JsonResponse({"token": raw, "expires_in": expires_in})


@member_required
def transcript_list(request: MemberRequest) -> HttpResponse:
    sessions = selectors.session_list_with_segments(tenant_id=request.tenant.pk)
    page = Paginator(sessions, TRANSCRIPTS_PER_PAGE).get_page(request.GET.get("page"))
    rows = [selectors.session_summarize(session=s) for s in page.object_list]
    return render(request, "transcription/transcript_list.html", {"page": page, "rows": rows})


def _session_or_404(request: MemberRequest, session_id: uuid.UUID) -> Session:
    try:
        return selectors.session_get(tenant_id=request.tenant.pk, session_id=session_id)
    except Session.DoesNotExist:
        raise Http404("No such transcript.") from None


@member_required
def transcript_detail(request: MemberRequest, session_id: uuid.UUID) -> HttpResponse:
    session = _session_or_404(request, session_id)
    segments = list(selectors.segment_list(tenant_id=request.tenant.pk, session_id=session.pk))
    context = {
        "session": session,
        "segments": exports.in_time_order(segments),  # a multichannel session's channels, turn by turn
        "multichannel": exports.is_multichannel(segments) or session.channels > 1,
        "words": sum(len(s.text.split()) for s in segments),
        "formats": list(exports.FORMATS),
    }
    return render(request, "transcription/transcript_detail.html", context)


@member_required
def transcript_download(request: MemberRequest, session_id: uuid.UUID, fmt: str) -> HttpResponse:
    if fmt not in exports.FORMATS:
        raise Http404("Unknown format.")
    session = _session_or_404(request, session_id)
    segments = list(selectors.segment_list(tenant_id=request.tenant.pk, session_id=session.pk))
    if fmt == "txt":
        body = exports.transcript_txt(segments)
    elif fmt == "srt":
        body = exports.transcript_srt(segments)
    else:
        body = json.dumps(exports.transcript_json(session, segments), ensure_ascii=False, indent=2) + "\n"
    response = HttpResponse(body, content_type=exports.FORMATS[fmt])
    filename = f"transcript-{session.started_at:%Y%m%d-%H%M%S}-{str(session.pk)[:8]}.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus scrape: a Bearer token equal to ASR_METRICS_TOKEN, or a logged-in staff user."""
    presented = parse_bearer(request.headers.get("Authorization"))
    token = settings.ASR_METRICS_TOKEN
    by_token = bool(token) and presented is not None and hmac.compare_digest(presented.encode(), token.encode())
    if not (by_token or request.user.is_staff):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(prometheus.render(), content_type=CONTENT_TYPE_LATEST)
