from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("transcription", "0009_webhook_delivery")]

    operations = [
        migrations.AddField(
            model_name="segment",
            name="confidence",
            field=models.FloatField(blank=True, null=True),
        ),
    ]
