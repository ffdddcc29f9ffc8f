"""SQLAlchemy 2 ORM with pgvector.sqlalchemy's types on the psycopg2,
psycopg 3 and asyncpg dialects, then SQLModel: has_table, create_all (a
key the client gives, an Identity() key, a serial key; HNSW indexes with
postgresql_ops), inspect() (indexes, constraints, columns), ORM inserts
(single, and bulk: with server-generated keys SQLAlchemy sends
"insertmanyvalues", `INSERT … SELECT p0::T … FROM (VALUES …) AS
imp_sen(…) ORDER BY sen_counter RETURNING …`), KNN with every operator
of vector, halfvec, sparsevec and bit, filter + KNN, get, update, delete,
a bad statement (it fails, the session goes on), drop_all."""

import asyncio
import random

import scenario
from pgvector import SparseVector
from pgvector.sqlalchemy import BIT, HALFVEC, SPARSEVEC, Vector
from sqlalchemy import Identity, Index, Integer, String, create_engine, inspect, select, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.util import greenlet_spawn
from sqlmodel import Field, SQLModel
from sqlmodel import Session as ModelSession
from sqlmodel import select as model_select


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "sa_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(50))
    embedding = mapped_column(Vector(3))
    half = mapped_column(HALFVEC(3), nullable=True)
    sparse = mapped_column(SPARSEVEC(5), nullable=True)
    bits = mapped_column(BIT(4), nullable=True)


Index(
    "sa_items_embedding",
    Item.embedding,
    postgresql_using="hnsw",
    postgresql_with={"m": 16, "ef_construction": 64},
    postgresql_ops={"embedding": "vector_l2_ops"},
)
Index(
    "sa_items_half",
    Item.half,
    postgresql_using="hnsw",
    # One option given: reloptions and pg_get_indexdef show only it.
    postgresql_with={"ef_construction": 32},
    postgresql_ops={"half": "halfvec_cosine_ops"},
)


class Note(Base):
    """Keys from an identity column."""

    __tablename__ = "sa_notes"
    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    body: Mapped[str] = mapped_column(String(20))


class Auto(Base):
    """Keys from a serial column, and vectors, inserted in bulk."""

    __tablename__ = "sa_auto"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    embedding = mapped_column(Vector(3))


class Doc(SQLModel, table=True):
    __tablename__ = "sm_docs"
    id: int | None = Field(default=None, primary_key=True)
    title: str
    embedding: list[float] = Field(sa_type=Vector(3))


def vectors(n, seed):
    rng = random.Random(seed)
    return [[round(rng.uniform(-1, 1), 3) for _ in range(3)] for _ in range(n)]


def sparse_of(v):
    """A 5-dimensional sparse vector from a dense 3-vector (every other place)."""
    return SparseVector({0: v[0], 2: v[1], 4: v[2]}, 5)


def bits_of(i):
    return format(i % 16, "04b")


def introspection(engine, steps, dialect):
    """inspect(): indexes (the HNSW index's postgresql_using / _ops /
    _with, read through unnest(indkey), generate_subscripts and array_agg),
    constraints, comments and columns, as PostgreSQL answers them."""
    i = inspect(engine)
    for t in ("sa_items", "sa_notes", "sa_auto"):
        steps.saw(f"{dialect} {t} indexes", i.get_indexes(t))
        steps.saw(f"{dialect} {t} pk", i.get_pk_constraint(t))
        steps.saw(f"{dialect} {t} unique", i.get_unique_constraints(t))
        steps.saw(f"{dialect} {t} foreign keys", i.get_foreign_keys(t))
        steps.saw(f"{dialect} {t} checks", i.get_check_constraints(t))
        steps.saw(f"{dialect} {t} comment", i.get_table_comment(t))
        columns = [(c["name"], str(c["type"]), c["nullable"], c["default"]) for c in i.get_columns(t)]
        steps.saw(f"{dialect} {t} columns", columns)


def knn(s, steps, dialect):
    """Every distance of every pgvector type, nearest first."""
    q = [0.1, -0.2, 0.3]
    searches = [(f"vector {name}", Item.embedding, name, q) for name in ("l2_distance", "cosine_distance", "max_inner_product", "l1_distance")]
    searches += [(f"halfvec {name}", Item.half, name, q) for name in ("l2_distance", "cosine_distance", "max_inner_product")]
    searches += [(f"sparsevec {name}", Item.sparse, name, sparse_of(q)) for name in ("l2_distance", "max_inner_product", "cosine_distance")]
    searches += [(f"bit {name}", Item.bits, name, "1010") for name in ("hamming_distance", "jaccard_distance")]
    for label, column, name, value in searches:
        d = getattr(column, name)(value)
        # Four bits make many ties: all rows, so no tie is cut by LIMIT.
        limit = 50 if label.startswith("bit") else 5
        rows = s.execute(select(Item.id, d).filter(column.is_not(None)).order_by(d).limit(limit)).all()
        steps.saw(f"{dialect} knn {label}", scenario.by_distance(rows))
    d = Item.embedding.l2_distance(q)
    rows = s.execute(select(Item.id, d).filter(Item.id > 10).order_by(d).limit(3)).all()
    steps.saw(f"{dialect} filter + knn", scenario.by_distance(rows))


def orm(engine, steps, dialect):
    Base.metadata.drop_all(engine)
    steps.saw(f"{dialect} has_table before", inspect(engine).has_table("sa_items"))
    Base.metadata.create_all(engine)
    steps.saw(f"{dialect} has_table", inspect(engine).has_table("sa_items"))
    introspection(engine, steps, dialect)
    data = vectors(20, 7)
    with Session(engine) as s:
        s.add(Item(id=1, name="one", embedding=data[0], half=data[0], sparse=sparse_of(data[0]), bits="1111"))
        s.commit()
        s.add_all(
            [
                Item(id=i + 1, name=f"n{i + 1}", embedding=v, half=v, sparse=sparse_of(v), bits=bits_of(i))
                for i, v in enumerate(data[1:], 1)
            ]
        )
        s.commit()
        s.add_all([Note(body="a"), Note(body="b"), Note(body="c")])
        s.commit()
        steps.saw(f"{dialect} identity", s.execute(select(Note.id, Note.body).order_by(Note.id)).all())
        autos = [Auto(embedding=v) for v in vectors(12, 11)]
        s.add_all(autos)
        s.flush()
        steps.saw(f"{dialect} serial keys returned", [a.id for a in autos])
        s.commit()
        rows = s.execute(select(Auto.id, Auto.embedding).order_by(Auto.id)).all()
        steps.saw(f"{dialect} serial rows", [(i, scenario.plain(e)) for i, e in rows])
        knn(s, steps, dialect)
        one = s.get(Item, 1)
        steps.saw(
            f"{dialect} get",
            (one.name, scenario.plain(one.embedding), scenario.plain(one.half), scenario.plain(one.sparse), one.bits),
        )
        one.embedding = [1, 1, 1]
        s.commit()
        steps.saw(f"{dialect} update", scenario.plain(s.get(Item, 1).embedding))
        s.delete(s.get(Item, 2))
        s.commit()
        steps.saw(f"{dialect} count", len(s.scalars(select(Item.id)).all()))
        steps.error(f"{dialect} bad statement", lambda: s.execute(text("SELECT * FROM sa_nosuchtable")))
        s.rollback()
        steps.saw(f"{dialect} after the error", s.scalar(select(Item.name).filter(Item.id == 3)))
    Base.metadata.drop_all(engine)
    steps.saw(f"{dialect} dropped", inspect(engine).has_table("sa_items"))


def sqlmodel(engine, steps):
    SQLModel.metadata.drop_all(engine)
    SQLModel.metadata.create_all(engine)
    with ModelSession(engine) as s:
        s.add(Doc(title="first", embedding=[1, 0, 0]))
        s.commit()
        s.add_all([Doc(title=f"t{i}", embedding=v) for i, v in enumerate(vectors(8, 9))])
        s.commit()
        found = s.exec(model_select(Doc).order_by(Doc.embedding.cosine_distance([1, 0, 0])).limit(3)).all()
        steps.saw("sqlmodel knn", [(d.id, d.title) for d in found])
        d = Doc.embedding.l2_distance([0, 1, 0])
        found = s.exec(model_select(Doc.id, d).filter(Doc.id > 3).order_by(d).limit(2)).all()
        steps.saw("sqlmodel filter + knn", scenario.by_distance(found))
        doc = s.get(Doc, 2)
        steps.saw("sqlmodel get", (doc.title, scenario.plain(doc.embedding)))
        s.delete(doc)
        s.commit()
        steps.saw("sqlmodel count", len(s.exec(model_select(Doc.id)).all()))
    SQLModel.metadata.drop_all(engine)


async def on_asyncpg(port, steps):
    """The same ORM steps on the asyncpg dialect: SQLAlchemy runs the
    synchronous API over asyncpg inside a greenlet (what AsyncSession and
    run_sync do)."""
    engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres")
    try:
        await greenlet_spawn(orm, engine.sync_engine, steps, "asyncpg")
    finally:
        await engine.dispose()


def run(port, steps):
    for dialect in ("psycopg2", "psycopg"):
        engine = create_engine(f"postgresql+{dialect}://postgres@127.0.0.1:{port}/postgres")
        orm(engine, steps, dialect)
        if dialect == "psycopg":
            sqlmodel(engine, steps)
        engine.dispose()
    asyncio.run(asyncio.wait_for(on_asyncpg(port, steps), scenario.DEADLINE_SECONDS))


if __name__ == "__main__":
    scenario.main("sqlalchemy", run)
