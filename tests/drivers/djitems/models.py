"""The model tests/drivers/django_driver.py migrates: a VectorField with
an HNSW index."""

from django.db import models
from pgvector.django import HnswIndex, VectorField


class Doc(models.Model):
    name = models.CharField(max_length=50)
    embedding = VectorField(dimensions=3)

    class Meta:
        app_label = "djitems"
        indexes = [
            HnswIndex(name="doc_hnsw", fields=["embedding"], m=16, ef_construction=64, opclasses=["vector_l2_ops"])
        ]
