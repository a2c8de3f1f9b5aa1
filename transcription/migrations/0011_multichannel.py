from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("transcription", "0010_segment_confidence")]

    operations = [
        migrations.AddField(
            model_name="segment",
            name="channel",
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="session",
            name="channels",
            field=models.PositiveSmallIntegerField(default=1),
        ),
    ]
