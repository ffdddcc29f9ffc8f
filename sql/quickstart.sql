-- pgvector's quick start, as it runs on a pgvshard shard:
--   pgvshard shard --listen 127.0.0.1:5433 --data-dir /tmp/shard &
--   psql -h 127.0.0.1 -p 5433 -U postgres -f sql/quickstart.sql
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE items (id bigserial PRIMARY KEY, category int, embedding vector(3));
INSERT INTO items (category, embedding) VALUES (1, '[1,2,3]'), (2, '[4,5,6]'), (1, '[1,1,1]') RETURNING id;
CREATE INDEX ON items USING hnsw (embedding vector_l2_ops) WITH (m = 16, ef_construction = 64);
SET hnsw.ef_search = 100;
SELECT id, embedding <-> '[1,2,3]' AS distance FROM items ORDER BY embedding <-> '[1,2,3]' LIMIT 5;
EXPLAIN SELECT id FROM items ORDER BY embedding <-> '[1,2,3]' LIMIT 5;
SELECT category, count(*), avg(embedding) FROM items GROUP BY category ORDER BY category;
\d items
DROP TABLE items;
