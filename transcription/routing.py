from django.urls import path

from transcription.consumers import TranscribeConsumer

websocket_urlpatterns = [
    path("ws/v1/transcribe", TranscribeConsumer.as_asgi()),
]
