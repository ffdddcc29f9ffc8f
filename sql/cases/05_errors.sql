-- Mistakes: the same SQLSTATE and message as PostgreSQL + pgvector.
CREATE TABLE items (id bigserial PRIMARY KEY, embedding vector(3), b bit(3));
INSERT INTO items (embedding) VALUES ('[1,2]');
INSERT INTO items (id) VALUES (1), (1);
SELECT nope FROM items;
SELECT * FROM nope;
CREATE TABLE items (id int);
CREATE INDEX ON items USING hnsw (embedding vector_l2_ops) WITH (m = 1);
CREATE INDEX ON items USING hnsw (embedding vector_l2_ops) WITH (m = 16, ef_construction = 8);
CREATE INDEX ON items USING hnsw (embedding halfvec_l2_ops);
CREATE INDEX ON items USING ivfflat (embedding vector_l1_ops);
CREATE INDEX ON items USING ivfflat (embedding vector_l2_ops) WITH (lists = 0);
SELECT 1/0;
SET hnsw.ef_search = 0;
SET ivfflat.probes = 0;
DROP TABLE nope;
DROP TABLE items;
