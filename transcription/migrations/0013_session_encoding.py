from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("transcription", "0012_session_label_twilio")]

    operations = [
        migrations.AddField(
            model_name="session",
            name="encoding",
            field=models.CharField(blank=True, default="", max_length=12),
        ),
    ]
