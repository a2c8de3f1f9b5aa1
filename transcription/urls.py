from django.urls import path

from transcription import views

urlpatterns = [
    path("metrics", views.metrics, name="metrics"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/defaults/", views.session_defaults_update, name="session_defaults"),
    path("record/", views.record, name="record"),
    path("record/token/", views.stream_token, name="stream_token"),
    path("transcripts/", views.transcript_list, name="transcript_list"),
    path("transcripts/<uuid:session_id>/", views.transcript_detail, name="transcript_detail"),
    path("transcripts/<uuid:session_id>/download.<str:fmt>", views.transcript_download, name="transcript_download"),
]
