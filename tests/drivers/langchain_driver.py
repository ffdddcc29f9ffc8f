"""LangChain's PGVector store (langchain-postgres) end to end, as an
application uses it, on SQLAlchemy with psycopg 3: the store takes an
advisory lock to create the extension, creates its two tables (a
collection table with a UNIQUE name, an embedding table whose
collection_id references it ON DELETE CASCADE, a GIN index on the jsonb
metadata), adds documents with fixed fake embeddings (an upsert), searches
by cosine and L2 distance with every metadata filter LangChain writes
(jsonpath comparisons through jsonb_path_match, $in/$nin, $like/$ilike,
$exists through jsonb_exists, $between, $and/$or/$not), in two
collections (the search joins the collection table), fetches by id,
deletes by id, drops a collection (the cascade deletes its documents) and
drops the tables. Through a proxy of several shards the collection table
is a reference table (the proxy's `reference_tables`): whole on every
shard, so its UNIQUE name, the foreign key to it, the cascade and the join
hold on each shard.

langchain-postgres pins pgvector 0.3.6, so this script runs in its own
virtual environment (scripts/test.sh creates it)."""

import warnings

import scenario
from langchain_core.embeddings import Embeddings
from langchain_postgres import PGVector
from langchain_postgres.vectorstores import DistanceStrategy
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

warnings.filterwarnings("ignore")

# Fixed embeddings at distinct distances from every query below.
DOCS = [
    ("d1", "apples are red", [1.0, 0.1, 0.0], {"kind": "fruit", "price": 3, "color": "red"}),
    ("d2", "bananas are yellow", [0.9, 0.4, 0.1], {"kind": "fruit", "price": 1.5, "color": "Yellow"}),
    ("d3", "carrots are orange", [0.2, 1.0, 0.3], {"kind": "vegetable", "price": 2, "organic": True}),
    ("d4", "broccoli is green", [0.1, 0.8, 0.9], {"kind": "vegetable", "price": 4, "organic": False}),
    ("d5", "water is wet", [0.0, 0.2, 1.0], {"kind": "drink", "price": 0.5}),
    ("d6", "tea is hot", [0.5, 0.5, 0.6], {"kind": "drink", "price": 2.5, "color": "brown"}),
]
QUERIES = {
    "red fruit": [1.0, 0.2, 0.05],
    "green things": [0.15, 0.7, 0.8],
}


class FixedEmbeddings(Embeddings):
    """Each known text's fixed vector (documents and queries)."""

    def __init__(self):
        self.vectors = {body: v for _, body, v, _ in DOCS} | QUERIES

    def embed_documents(self, texts):
        return [self.vectors[t] for t in texts]

    def embed_query(self, text):
        return self.vectors[text]


FILTERS = [
    ("eq", {"kind": "fruit"}),
    ("$eq number", {"price": {"$eq": 2}}),
    ("$ne", {"kind": {"$ne": "drink"}}),
    ("$gt", {"price": {"$gt": 1.5}}),
    ("$lte", {"price": {"$lte": 2}}),
    ("$between", {"price": {"$between": [1, 3]}}),
    ("$in", {"kind": {"$in": ["fruit", "drink"]}}),
    ("$nin", {"kind": {"$nin": ["fruit"]}}),
    ("$like", {"color": {"$like": "%e%"}}),
    ("$ilike", {"color": {"$ilike": "y%"}}),
    ("$exists", {"color": {"$exists": True}}),
    ("not $exists", {"organic": {"$exists": False}}),
    ("bool", {"organic": True}),
    ("$and", {"$and": [{"kind": "vegetable"}, {"price": {"$gt": 2}}]}),
    ("$or", {"$or": [{"kind": "drink"}, {"price": {"$gte": 3}}]}),
    ("$not", {"$not": [{"kind": "fruit"}]}),
]


def store(port, collection, strategy=DistanceStrategy.COSINE):
    return PGVector(
        embeddings=FixedEmbeddings(),
        connection=f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres",
        collection_name=collection,
        collection_metadata={"topic": collection},
        embedding_length=3,
        distance_strategy=strategy,
        engine_args={"poolclass": NullPool},
    )


def found(results):
    """(id, text, metadata, distance) of search results."""
    return scenario.by_distance(
        [(d.id, d.page_content, sorted(d.metadata.items()), float(s)) for d, s in results]
    )


def run(port, steps):
    engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", poolclass=NullPool)
    with engine.begin() as c:
        c.execute(text("DROP TABLE IF EXISTS langchain_pg_embedding"))
        c.execute(text("DROP TABLE IF EXISTS langchain_pg_collection"))

    food = store(port, "food")
    steps.saw("add food", food.add_texts(
        [body for _, body, _, _ in DOCS[:4]],
        metadatas=[m for _, _, _, m in DOCS[:4]],
        ids=[i for i, _, _, _ in DOCS[:4]],
    ))
    other = store(port, "other")
    steps.saw("add other", other.add_texts(
        [body for _, body, _, _ in DOCS[2:]],
        metadatas=[m for _, _, _, m in DOCS[2:]],
        ids=[f"o{i}" for i, _, _, _ in DOCS[2:]],
    ))
    # An upsert: the same id again replaces its document.
    steps.saw("re-add d1", food.add_texts(["apples are red"], metadatas=[{"kind": "fruit", "price": 3.5}], ids=["d1"]))

    for q in QUERIES:
        steps.saw(f"food {q}", found(food.similarity_search_with_score(q, k=3)))
        steps.saw(f"other {q}", found(other.similarity_search_with_score(q, k=10)))
    for label, flt in FILTERS:
        steps.saw(f"food filter {label}", found(food.similarity_search_with_score("red fruit", k=10, filter=flt)))
        steps.saw(f"other filter {label}", found(other.similarity_search_with_score("green things", k=10, filter=flt)))
    l2 = store(port, "food", DistanceStrategy.EUCLIDEAN)
    steps.saw("food l2", found(l2.similarity_search_with_score("green things", k=2, filter={"price": {"$lt": 4}})))
    ip = store(port, "food", DistanceStrategy.MAX_INNER_PRODUCT)
    steps.saw("food ip", found(ip.similarity_search_with_score("red fruit", k=2)))
    steps.saw("mmr", [d.id for d in food.max_marginal_relevance_search("red fruit", k=2, fetch_k=4)])

    steps.saw("get by ids", sorted((d.id, d.page_content) for d in food.get_by_ids(["d2", "d3", "d9"])))
    food.delete(ids=["d2"])
    steps.saw("after delete", found(food.similarity_search_with_score("red fruit", k=10)))
    other.delete(ids=["od3", "od4"], collection_only=True)
    steps.saw("after collection delete", found(other.similarity_search_with_score("red fruit", k=10)))

    food.delete_collection()
    with engine.connect() as c:
        steps.saw("collections left", c.execute(text(
            "SELECT name, cmetadata::text FROM langchain_pg_collection ORDER BY name")).all())
        steps.saw("cascade", c.execute(text(
            "SELECT c.name, count(*) FROM langchain_pg_embedding e "
            "JOIN langchain_pg_collection c ON e.collection_id = c.uuid GROUP BY c.name ORDER BY c.name"
        )).all())
        steps.saw("embeddings left", c.execute(text(
            "SELECT id, document FROM langchain_pg_embedding ORDER BY id")).all())
    steps.error("duplicate collection name", lambda: _insert_duplicate(engine))
    other.drop_tables()
    with engine.connect() as c:
        steps.saw("dropped", c.execute(text(
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'langchain_pg_%'")).scalar())


def _insert_duplicate(engine):
    with engine.begin() as c:
        c.execute(text(
            "INSERT INTO langchain_pg_collection (uuid, name) VALUES ('6f1c2a52-0000-4000-8000-000000000001', 'other')"))


if __name__ == "__main__":
    scenario.main("langchain", run)
