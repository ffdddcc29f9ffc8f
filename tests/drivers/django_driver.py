"""Django's ORM with pgvector.django: `migrate` of a model with a
VectorField and an HnswIndex (identity key, django_migrations), bulk and
single inserts, KNN ordered by L2Distance and by an annotated
CosineDistance, filter + KNN, get, update, delete, count. One database
alias per target; each starts from no tables."""

import random

import django
import scenario
from django.conf import settings

settings.configure(
    DATABASES={
        name: {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": "127.0.0.1",
            "PORT": port,
            "USER": "postgres",
            "NAME": "postgres",
        }
        for name, port in scenario.targets()
    }
    | {"default": {}},
    INSTALLED_APPS=["djitems"],
    USE_TZ=True,
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
)
django.setup()

from django.core.management import call_command  # noqa: E402 - after setup
from django.db import connections  # noqa: E402
from djitems.models import Doc  # noqa: E402
from pgvector.django import CosineDistance, L2Distance  # noqa: E402


def run(port, steps):
    alias = next(name for name, p in scenario.targets() if p == port)
    with connections[alias].cursor() as c:
        c.execute("DROP TABLE IF EXISTS djitems_doc")
        c.execute("DROP TABLE IF EXISTS django_migrations")
    call_command("migrate", "djitems", database=alias, verbosity=0)
    docs = Doc.objects.using(alias)
    rng = random.Random(4)
    docs.bulk_create([Doc(name=f"d{i}", embedding=[round(rng.uniform(-1, 1), 3) for _ in range(3)]) for i in range(12)])
    docs.create(name="x", embedding=[0, 0, 1])
    steps.saw("ids", list(docs.order_by("id").values_list("id", "name")))
    q = [0.2, -0.1, 0.4]
    steps.saw("knn l2", [d.name for d in docs.order_by(L2Distance("embedding", q))[:4]])
    near = docs.annotate(d=CosineDistance("embedding", q)).order_by("d")[:4]
    steps.saw("knn cosine", scenario.by_distance([(d.name, d.d) for d in near]))
    steps.saw("filter + knn", [d.name for d in docs.filter(name__startswith="d").order_by(L2Distance("embedding", q))[:3]])
    one = docs.get(name="d3")
    steps.saw("get", (one.name, scenario.plain(one.embedding)))
    one.embedding = [1, 2, 3]
    one.save(using=alias)
    steps.saw("update", scenario.plain(docs.get(name="d3").embedding))
    steps.saw("delete", docs.filter(name__startswith="d1").delete())
    steps.saw("count", docs.count())
    with connections[alias].cursor() as c:
        c.execute("DROP TABLE djitems_doc")
        c.execute("DROP TABLE django_migrations")
    connections[alias].close()


if __name__ == "__main__":
    scenario.main("django", run)
