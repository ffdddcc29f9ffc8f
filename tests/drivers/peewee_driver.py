"""peewee with the pgvector package's fields: create_tables, an HNSW
index, insert and insert_many, get, get_or_create (LIMIT 1 OFFSET 0
without ORDER BY), KNN with every distance of VectorField, HalfVectorField,
SparseVectorField and FixedBitField, filter + KNN, update, delete, a
duplicate key, atomic() committed and rolled back, drop_tables."""

import random

import peewee
import scenario
from pgvector.peewee import FixedBitField, HalfVectorField, SparseVectorField, VectorField
from pgvector import SparseVector


def run(port, steps):
    db = peewee.PostgresqlDatabase("postgres", host="127.0.0.1", port=port, user="postgres", autorollback=True)

    class Item(peewee.Model):
        id = peewee.IntegerField(primary_key=True)
        cat = peewee.IntegerField()
        embedding = VectorField(dimensions=3)
        half = HalfVectorField(dimensions=3, null=True)
        sparse = SparseVectorField(dimensions=5, null=True)
        bits = FixedBitField(max_length=8, null=True)

        class Meta:
            database = db
            table_name = "peewee_items"

    db.connect()
    db.drop_tables([Item], safe=True)
    # safe=True asks pg_catalog whether the table exists (not yet on a shard).
    db.create_tables([Item], safe=False)
    db.execute_sql(
        "CREATE INDEX peewee_items_embedding ON peewee_items USING hnsw (embedding vector_l2_ops)"
    )
    rng = random.Random(5)

    def vec():
        return [round(rng.uniform(-1, 1), 3) for _ in range(3)]

    rows = []
    for i in range(1, 25):
        v = vec()
        sparse = SparseVector({0: round(rng.uniform(-1, 1), 3), 3: round(rng.uniform(-1, 1), 3)}, 5)
        bits = "".join(rng.choice("01") for _ in range(8))
        rows.append({"id": i, "cat": i % 3, "embedding": v, "half": v, "sparse": sparse, "bits": bits})
    steps.saw("create", Item.create(**rows[0]).id)
    # One row a statement: a multi-row INSERT reaching several shards
    # inside peewee's implicit transaction needs two-phase commit.
    for r in rows[1:]:
        Item.insert_many([r]).execute()
    steps.saw("count", Item.select().count())
    got = Item.get(Item.id == 7)
    steps.saw("get", (got.id, got.cat, list(got.embedding), list(got.half), got.sparse.to_list(), got.bits))
    item, created = Item.get_or_create(id=3, defaults={"cat": 9, "embedding": [0, 0, 0]})
    steps.saw("get_or_create existing", (item.id, item.cat, created))
    item, created = Item.get_or_create(id=30, defaults={"cat": 9, "embedding": [0, 0, 1]})
    steps.saw("get_or_create new", (item.id, item.cat, created))
    steps.saw("first without order", Item.select().where(Item.cat == 9).first().id)
    q = [0.2, -0.1, 0.4]
    for name, distance in [
        ("l2", Item.embedding.l2_distance(q)),
        ("cosine", Item.embedding.cosine_distance(q)),
        ("inner", Item.embedding.max_inner_product(q)),
        ("l1", Item.embedding.l1_distance(q)),
        ("half l2", Item.half.l2_distance(q)),
        ("sparse l2", Item.sparse.l2_distance(SparseVector({0: 0.5, 3: -0.5}, 5))),
        ("hamming", Item.bits.hamming_distance("10101010")),
        ("jaccard", Item.bits.jaccard_distance("10101010")),
    ]:
        found = Item.select(Item.id, distance.alias("d")).where(Item.cat != 9).order_by(distance).limit(40)
        steps.saw(f"knn {name}", scenario.by_distance([(r.id, r.d) for r in found]))
    near = (
        Item.select(Item.id)
        .where(Item.cat == 1)
        .order_by(Item.embedding.l2_distance(q))
        .limit(3)
    )
    steps.saw("filter + knn", [r.id for r in near])
    steps.saw("update", Item.update(cat=5).where(Item.id == 4).execute())
    steps.saw("delete", Item.delete().where(Item.cat == 2).execute())
    try:
        Item.create(id=1, cat=0, embedding=[1, 1, 1])
        steps.saw("duplicate", "no error")
    except peewee.IntegrityError as e:
        steps.saw("duplicate", ("error", scenario.sqlstate(e)))
    try:
        with db.atomic():
            Item.create(id=40, cat=0, embedding=[1, 1, 1])
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    with db.atomic():
        Item.create(id=41, cat=0, embedding=[1, 1, 1])
    steps.saw("atomic", [r.id for r in Item.select(Item.id).where(Item.id >= 40).order_by(Item.id)])
    db.drop_tables([Item])
    db.close()


if __name__ == "__main__":
    scenario.main("peewee", run)
