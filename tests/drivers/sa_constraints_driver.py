"""SQLAlchemy's inspect() of UNIQUE and FOREIGN KEY constraints (a
column's unique=True, a named two-column UniqueConstraint, ForeignKey
with ON DELETE CASCADE and SET NULL) on psycopg 3, as PostgreSQL answers."""

import scenario
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, UniqueConstraint, create_engine, inspect

metadata = MetaData()
Table(
    "sa_k_parent",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(20), unique=True),
    Column("a", Integer),
    Column("b", Integer),
    UniqueConstraint("a", "b", name="sa_k_ab"),
)
Table(
    "sa_k_child",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("pid", Integer, ForeignKey("sa_k_parent.id", ondelete="CASCADE")),
    Column("pname", String(20), ForeignKey("sa_k_parent.name", ondelete="SET NULL")),
)


def run(port, steps):
    engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres")
    metadata.drop_all(engine)
    metadata.create_all(engine)
    i = inspect(engine)
    for t in ("sa_k_parent", "sa_k_child"):
        steps.saw(f"{t} pk", i.get_pk_constraint(t))
        steps.saw(f"{t} unique", sorted(i.get_unique_constraints(t), key=lambda u: u["name"]))
        steps.saw(f"{t} foreign keys", sorted(i.get_foreign_keys(t), key=lambda f: f["name"]))
    metadata.drop_all(engine)
    engine.dispose()


if __name__ == "__main__":
    scenario.main("sa_constraints", run)
