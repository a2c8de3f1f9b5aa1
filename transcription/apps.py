from django.apps import AppConfig


class TranscriptionConfig(AppConfig):
    name = "transcription"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from transcription.engine_settings import check_language_models

        check_language_models()  # every process (server, workers, manage.py) refuses a bad mapping at once
