"""SQLAlchemy 2 ORM with pgvector.sqlalchemy's types, on the psycopg2 and
psycopg 3 dialects, then SQLModel: has_table, create_all (a serial key, an
Identity() key, an HNSW index with postgresql_ops), inspect() (indexes,
constraints, columns), ORM inserts (single
and bulk), KNN ordered by l2_distance / cosine_distance /
max_inner_product, filter + KNN, get, update, delete, drop_all."""

import random

import scenario
from pgvector.sqlalchemy import HALFVEC, Vector
from sqlalchemy import Identity, Index, Integer, String, create_engine, inspect, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlmodel import Field, SQLModel
from sqlmodel import Session as ModelSession
from sqlmodel import select as model_select


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "sa_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    embedding = mapped_column(Vector(3))
    half = mapped_column(HALFVEC(3), nullable=True)


Index(
    "sa_items_embedding",
    Item.embedding,
    postgresql_using="hnsw",
    postgresql_with={"m": 16, "ef_construction": 64},
    postgresql_ops={"embedding": "vector_l2_ops"},
)


class Note(Base):
    __tablename__ = "sa_notes"
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    body: Mapped[str] = mapped_column(String(20))


class Doc(SQLModel, table=True):
    __tablename__ = "sm_docs"
    id: int | None = Field(default=None, primary_key=True)
    title: str
    embedding: list[float] = Field(sa_type=Vector(3))


def vectors(n, seed):
    rng = random.Random(seed)
    return [[round(rng.uniform(-1, 1), 3) for _ in range(3)] for _ in range(n)]


def introspection(engine, steps, dialect):
    """inspect(): indexes (the HNSW index's postgresql_using / _ops /
    _with, read through unnest(indkey), generate_subscripts and array_agg),
    constraints, comments and columns, as PostgreSQL answers them."""
    i = inspect(engine)
    for t in ("sa_items", "sa_notes"):
        steps.saw(f"{dialect} {t} indexes", i.get_indexes(t))
        steps.saw(f"{dialect} {t} pk", i.get_pk_constraint(t))
        steps.saw(f"{dialect} {t} unique", i.get_unique_constraints(t))
        steps.saw(f"{dialect} {t} foreign keys", i.get_foreign_keys(t))
        steps.saw(f"{dialect} {t} checks", i.get_check_constraints(t))
        steps.saw(f"{dialect} {t} comment", i.get_table_comment(t))
    columns = [(c["name"], str(c["type"]), c["nullable"], c["default"]) for c in i.get_columns("sa_items")]
    steps.saw(f"{dialect} sa_items columns", columns)


def orm(engine, steps, dialect):
    Base.metadata.drop_all(engine)
    steps.saw(f"{dialect} has_table before", inspect(engine).has_table("sa_items"))
    Base.metadata.create_all(engine)
    steps.saw(f"{dialect} has_table", inspect(engine).has_table("sa_items"))
    introspection(engine, steps, dialect)
    data = vectors(20, 7)
    with Session(engine) as s:
        s.add(Item(id=1, name="one", embedding=data[0], half=data[0]))
        s.commit()
        s.add_all([Item(id=i + 1, name=f"n{i + 1}", embedding=v) for i, v in enumerate(data[1:], 1)])
        s.commit()
        s.add_all([Note(body="a"), Note(body="b")])
        s.commit()
        steps.saw(f"{dialect} identity", s.execute(select(Note.id, Note.body).order_by(Note.id)).all())
        q = [0.1, -0.2, 0.3]
        for name in ("l2_distance", "cosine_distance", "max_inner_product"):
            d = getattr(Item.embedding, name)(q)
            rows = s.execute(select(Item.id, d).order_by(d).limit(5)).all()
            steps.saw(f"{dialect} knn {name}", scenario.by_distance(rows))
        d = Item.embedding.l2_distance(q)
        rows = s.execute(select(Item.id, d).filter(Item.id > 10).order_by(d).limit(3)).all()
        steps.saw(f"{dialect} filter + knn", scenario.by_distance(rows))
        one = s.get(Item, 1)
        steps.saw(f"{dialect} get", (one.name, scenario.plain(one.embedding), scenario.plain(one.half)))
        one.embedding = [1, 1, 1]
        s.commit()
        steps.saw(f"{dialect} update", scenario.plain(s.get(Item, 1).embedding))
        s.delete(s.get(Item, 2))
        s.commit()
        steps.saw(f"{dialect} count", len(s.scalars(select(Item.id)).all()))
    Base.metadata.drop_all(engine)
    steps.saw(f"{dialect} dropped", inspect(engine).has_table("sa_items"))


def sqlmodel(engine, steps):
    SQLModel.metadata.drop_all(engine)
    SQLModel.metadata.create_all(engine)
    with ModelSession(engine) as s:
        for i, v in enumerate(vectors(8, 9)):
            s.add(Doc(title=f"t{i}", embedding=v))
        s.commit()
        found = s.exec(model_select(Doc).order_by(Doc.embedding.cosine_distance([1, 0, 0])).limit(3)).all()
        steps.saw("sqlmodel knn", [(d.id, d.title) for d in found])
    SQLModel.metadata.drop_all(engine)


def run(port, steps):
    for dialect in ("psycopg2", "psycopg"):
        engine = create_engine(f"postgresql+{dialect}://postgres@127.0.0.1:{port}/postgres")
        orm(engine, steps, dialect)
        if dialect == "psycopg":
            sqlmodel(engine, steps)
        engine.dispose()


if __name__ == "__main__":
    scenario.main("sqlalchemy", run)
