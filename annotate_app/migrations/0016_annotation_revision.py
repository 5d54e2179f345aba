# AnnotationRevision: the values an annotator's edit replaced (issue 19: Back reopens a submission for editing).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('annotate_app', '0015_admin_texts'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='AnnotationRevision',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('edited_at', models.DateTimeField()),
                ('previous', models.JSONField()),
                ('annotation', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                                 related_name='revisions', to='annotate_app.annotation')),
                ('editor', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL,
                                             related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['id'],
            },
        ),
    ]
