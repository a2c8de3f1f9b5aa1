from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_tenant_session_defaults"),
    ]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="default_final_model",
            field=models.CharField(blank=True, default="", max_length=50),
        ),
    ]
