"""LlamaIndex's PostgreSQL vector store (llama-index-vector-stores-postgres)
end to end, as an application uses it, on SQLAlchemy with psycopg2 and
asyncpg: the store creates its table (a `json` metadata column, a btree
index on `metadata_ ->> 'ref_doc_id'`) and an HNSW index, or with
use_jsonb and indexed_metadata_keys a `jsonb` column and a btree index on
`CAST(metadata_ ->> 'price' AS FLOAT)`; nodes with fixed embeddings are
added (sync and async), queried by cosine distance with every metadata
filter LlamaIndex writes (=, !=, >, <=, IN, NOT IN, LIKE, ILIKE, IS NULL,
@> and ?| over `::jsonb`, nested AND/OR), fetched by id and by filter,
and deleted by ref_doc_id, by node id, by filter, and all."""

import asyncio
import warnings

import scenario
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)
from llama_index.core.vector_stores.types import VectorStoreQueryMode
from llama_index.vector_stores.postgres import PGVectorStore
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

warnings.filterwarnings("ignore")

# Fixed embeddings at distinct cosine distances from every query below.
NODES = [
    ("n1", "apples are red", [1.0, 0.1, 0.0], {"kind": "fruit", "price": 3, "tags": ["red", "sweet"]}, "d1"),
    ("n2", "bananas are yellow", [0.9, 0.4, 0.1], {"kind": "fruit", "price": 1.5, "tags": ["yellow"]}, "d1"),
    ("n3", "carrots are orange", [0.2, 1.0, 0.3], {"kind": "vegetable", "price": 2, "tags": ["orange"]}, "d2"),
    ("n4", "broccoli is green", [0.1, 0.8, 0.9], {"kind": "Vegetable", "price": 4, "tags": ["green", "bitter"]}, "d2"),
    ("n5", "water is wet", [0.0, 0.2, 1.0], {"kind": "drink", "price": 0.5, "note": None, "tags": []}, "d3"),
    ("n6", "tea is hot", [0.5, 0.5, 0.6], {"kind": "drink", "price": 2.5, "tags": ["hot"]}, "d3"),
]


def nodes(ids):
    return [
        TextNode(
            id_=nid,
            text=body,
            embedding=embedding,
            metadata=dict(meta),
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc)},
        )
        for nid, body, embedding, meta, doc in NODES
        if nid in ids
    ]


def store(port, table, **kwargs):
    url = f"postgres:@127.0.0.1:{port}/postgres"
    return PGVectorStore(
        connection_string=f"postgresql+psycopg2://{url}",
        async_connection_string=f"postgresql+asyncpg://{url}",
        table_name=table,
        embed_dim=3,
        initialization_fail_on_error=True,
        # Each asyncio.run has its own loop: no pooled connection may
        # outlive it.
        create_engine_kwargs={"poolclass": NullPool},
        **kwargs,
    )


def f(key, value, op=FilterOperator.EQ):
    return MetadataFilter(key=key, value=value, operator=op)


FILTERS = [
    ("eq text", MetadataFilters(filters=[f("kind", "fruit")])),
    ("eq number", MetadataFilters(filters=[f("price", 2)])),
    ("ne", MetadataFilters(filters=[f("kind", "drink", FilterOperator.NE)])),
    ("gt", MetadataFilters(filters=[f("price", 1.5, FilterOperator.GT)])),
    ("lte", MetadataFilters(filters=[f("price", 2, FilterOperator.LTE)])),
    ("in", MetadataFilters(filters=[f("kind", ["drink", "vegetable"], FilterOperator.IN)])),
    ("nin", MetadataFilters(filters=[f("kind", ["drink", "fruit"], FilterOperator.NIN)])),
    ("like", MetadataFilters(filters=[f("kind", "eget", FilterOperator.TEXT_MATCH)])),
    ("ilike", MetadataFilters(filters=[f("kind", "VEG", FilterOperator.TEXT_MATCH_INSENSITIVE)])),
    ("is empty", MetadataFilters(filters=[f("note", None, FilterOperator.IS_EMPTY)])),
    ("contains", MetadataFilters(filters=[f("tags", "green", FilterOperator.CONTAINS)])),
    ("any", MetadataFilters(filters=[f("tags", ["hot", "red"], FilterOperator.ANY)])),
    ("all", MetadataFilters(filters=[f("tags", ["green", "bitter"], FilterOperator.ALL)])),
    (
        "or of and",
        MetadataFilters(
            filters=[
                f("kind", "drink"),
                MetadataFilters(filters=[f("kind", "fruit"), f("price", 2, FilterOperator.GTE)]),
            ],
            condition=FilterCondition.OR,
        ),
    ),
]


def result(r):
    """Ids, similarities and each node's text, metadata and source."""
    return (
        r.ids,
        [scenario.Near(s) for s in r.similarities],
        [(n.node_id, n.get_content(), n.metadata, n.ref_doc_id) for n in r.nodes],
    )


def got(found):
    return sorted((n.node_id, n.get_content(), n.metadata, list(n.embedding)) for n in found)


def run(port, steps):
    engine = create_engine(f"postgresql+psycopg2://postgres:@127.0.0.1:{port}/postgres")
    with engine.begin() as c:
        for t in ("data_li_items", "data_li_docs"):
            c.execute(text(f"DROP TABLE IF EXISTS {t}"))
    engine.dispose()

    # The default store: json metadata, an HNSW index on cosine distance.
    items = store(
        port,
        "li_items",
        hnsw_kwargs={"hnsw_m": 16, "hnsw_ef_construction": 64, "hnsw_ef_search": 40},
    )
    steps.saw("add", items.add(nodes({"n1", "n2", "n3"})))
    steps.saw("async add", asyncio.run(items.async_add(nodes({"n4", "n5", "n6"}))))
    q = [1.0, 0.3, 0.2]
    steps.saw("query", result(items.query(VectorStoreQuery(query_embedding=q, similarity_top_k=3))))
    for label, filters in FILTERS:
        query = VectorStoreQuery(query_embedding=q, similarity_top_k=4, filters=filters)
        steps.saw(f"query {label}", result(items.query(query)))
    steps.saw(
        "async query",
        result(asyncio.run(items.aquery(VectorStoreQuery(query_embedding=[0, 1, 0], similarity_top_k=2, filters=FILTERS[3][1])))),
    )
    mmr = VectorStoreQuery(query_embedding=q, similarity_top_k=2, mode=VectorStoreQueryMode.MMR)
    steps.saw("mmr query", result(items.query(mmr, mmr_threshold=0.5)))
    steps.saw("get by ids", got(items.get_nodes(node_ids=["n2", "n5", "nope"])))
    steps.saw("get by filter", got(items.get_nodes(filters=FILTERS[0][1])))
    steps.saw("async get", got(asyncio.run(items.aget_nodes(filters=FILTERS[6][1]))))
    items.delete("d1")
    steps.saw("after delete ref_doc", got(items.get_nodes(filters=MetadataFilters(filters=[f("price", 0, FilterOperator.GT)]))))
    items.delete_nodes(node_ids=["n3"], filters=MetadataFilters(filters=[f("kind", "vegetable")]))
    asyncio.run(items.adelete("d3"))
    steps.saw("after deletes", result(items.query(VectorStoreQuery(query_embedding=q, similarity_top_k=10))))
    items.clear()
    steps.saw("after clear", result(items.query(VectorStoreQuery(query_embedding=q, similarity_top_k=10))))

    # jsonb metadata with a btree index on a metadata key cast to float.
    docs = store(port, "li_docs", use_jsonb=True, indexed_metadata_keys={("price", "float")})
    steps.saw("jsonb add", docs.add(nodes({n[0] for n in NODES})))
    for label, filters in FILTERS:
        query = VectorStoreQuery(query_embedding=[0.3, 0.3, 0.9], similarity_top_k=3, filters=filters)
        steps.saw(f"jsonb query {label}", result(docs.query(query)))
    # The index computes CAST(metadata_ ->> 'price' AS FLOAT) for every row.
    cheap = TextNode(id_="n7", text="?", embedding=[1, 1, 1], metadata={"kind": "x", "price": "cheap"})
    steps.error("index refuses a row", lambda: docs.add([cheap]))
    asyncio.run(docs.adelete_nodes(filters=MetadataFilters(filters=[f("price", 2, FilterOperator.LT)])))
    steps.saw("jsonb after delete", got(docs.get_nodes(node_ids=[n[0] for n in NODES])))

    engine = create_engine(f"postgresql+psycopg2://postgres:@127.0.0.1:{port}/postgres")
    with engine.begin() as c:
        indexes = c.execute(
            text(
                "SELECT tablename, indexname, indexdef FROM pg_indexes "
                "WHERE tablename IN ('data_li_items', 'data_li_docs') ORDER BY 1, 2"
            )
        ).all()
        steps.saw("indexes", [tuple(r) for r in indexes])
        columns = c.execute(
            text(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_name IN ('data_li_items', 'data_li_docs') ORDER BY 1, ordinal_position"
            )
        ).all()
        steps.saw("columns", [tuple(r) for r in columns])
        steps.error("bad cast", lambda: c.execute(text("SELECT (metadata_->>'kind')::float FROM data_li_docs")).all())
    with engine.begin() as c:
        for t in ("data_li_items", "data_li_docs"):
            c.execute(text(f"DROP TABLE {t}"))
    engine.dispose()


if __name__ == "__main__":
    scenario.main("llamaindex", run)
