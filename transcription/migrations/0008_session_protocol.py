from django.db import migrations, models


def file_sessions_are_rest(apps, schema_editor):
    """Sessions of file uploads so far all came through our own REST API."""
    apps.get_model("transcription", "Session").objects.filter(source="file").update(protocol="rest")


class Migration(migrations.Migration):
    dependencies = [("transcription", "0007_session_last_seen_at")]

    operations = [
        migrations.AddField(
            model_name="session",
            name="protocol",
            field=models.CharField(
                choices=[
                    ("v1", "asrplatform WebSocket v1"),
                    ("rest", "asrplatform REST"),
                    ("openai", "OpenAI audio API"),
                    ("openai-realtime", "OpenAI Realtime"),
                    ("deepgram", "Deepgram"),
                    ("funasr", "FunASR WebSocket"),
                ],
                default="v1",
                max_length=16,
            ),
        ),
        migrations.RunPython(file_sessions_are_rest, migrations.RunPython.noop),
    ]
