"""The migration `makemigrations djitems` writes for models.py (Django 5.2)."""

import pgvector.django.indexes
import pgvector.django.vector
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Doc",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=50)),
                ("embedding", pgvector.django.vector.VectorField(dimensions=3)),
            ],
            options={
                "indexes": [
                    pgvector.django.indexes.HnswIndex(
                        ef_construction=64, fields=["embedding"], m=16, name="doc_hnsw", opclasses=["vector_l2_ops"]
                    )
                ],
            },
        ),
    ]
