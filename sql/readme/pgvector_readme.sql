-- What a pgvector user types, section by section of pgvector's README, run
-- by tests/proxy_pgvector_readme.rs on real PostgreSQL + pgvector and
-- through the proxy (embedded default, and two `pgvshard shard` processes).
-- `-- # name` starts a section; `-- refused: words` before a statement says
-- the proxy answers it with 0A000 and a message containing `words`.
-- # Getting Started
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE items (id bigserial PRIMARY KEY, embedding vector(3));
INSERT INTO items (embedding) VALUES ('[1,2,3]'), ('[4,5,6]');
SELECT * FROM items ORDER BY embedding <-> '[3,1,2]' LIMIT 5;
-- # Storing
CREATE TABLE docs (id bigserial PRIMARY KEY);
ALTER TABLE docs ADD COLUMN embedding vector(3);
INSERT INTO docs (embedding) VALUES ('[1,2,3]'), ('[4,5,6]');
INSERT INTO docs (id, embedding) VALUES (1, '[1,2,3]'), (2, '[4,5,6]') ON CONFLICT (id) DO UPDATE SET embedding = EXCLUDED.embedding;
INSERT INTO docs (id, embedding) VALUES (1, '[7,8,9]'), (3, '[0,1,0]') ON CONFLICT (id) DO UPDATE SET embedding = EXCLUDED.embedding;
SELECT * FROM docs ORDER BY id;
UPDATE docs SET embedding = '[1,2,3]' WHERE id = 1;
DELETE FROM docs WHERE id = 1;
SELECT * FROM docs ORDER BY id;
DROP TABLE docs;
-- # Querying
INSERT INTO items (id, embedding) VALUES (3, '[1,1,1]'), (4, '[-1,0,2]'), (5, '[2,2,6]'), (6, '[0,0,8]'), (7, '[3,-1,2]');
SELECT * FROM items ORDER BY embedding <-> '[3,1,2]' LIMIT 5;
SELECT * FROM items ORDER BY embedding <#> '[3,1,2]' LIMIT 5;
SELECT * FROM items ORDER BY embedding <=> '[3,1,2]' LIMIT 5;
SELECT * FROM items ORDER BY embedding <+> '[3,1,2]' LIMIT 5;
SELECT * FROM items WHERE id != 1 ORDER BY embedding <-> (SELECT embedding FROM items WHERE id = 1) LIMIT 5;
SELECT id, embedding <-> (SELECT embedding FROM items WHERE id = 2) AS d FROM items WHERE id < 5;
SELECT i.id FROM items i WHERE i.embedding = (SELECT x.embedding FROM items x WHERE x.id = 3);
SELECT id FROM items WHERE id = (SELECT id FROM items WHERE id = 99);
SELECT id FROM items WHERE id = (SELECT id FROM items WHERE id > 3);
SELECT id FROM items WHERE id = (SELECT id, embedding FROM items WHERE id = 3);
BEGIN;
UPDATE items SET embedding = '[9,9,9]' WHERE id = 3;
-- refused: a subquery in an expression
SELECT id FROM items ORDER BY embedding <-> (SELECT embedding FROM items WHERE id = 3) LIMIT 1;
ROLLBACK;
-- refused: a subquery in an expression
SELECT o.id FROM items o WHERE o.embedding = (SELECT i.embedding FROM items i WHERE i.id = o.id + 1);
SELECT * FROM items WHERE embedding <-> '[3,1,2]' < 5;
SELECT * FROM items WHERE embedding <-> '[3,1,2]' < 5 ORDER BY embedding <-> '[3,1,2]' LIMIT 3;
SELECT embedding <-> '[3,1,2]' AS distance FROM items;
SELECT (embedding <#> '[3,1,2]') * -1 AS inner_product FROM items;
SELECT -1 * (embedding <#> '[3,1,2]') AS inner_product FROM items;
SELECT 1 - (embedding <=> '[3,1,2]') AS cosine_similarity FROM items;
SELECT id, 1 - (embedding <=> '[3,1,2]') AS cosine_similarity FROM items ORDER BY embedding <=> '[3,1,2]' LIMIT 3;
SELECT AVG(embedding) FROM items;
ALTER TABLE items ADD COLUMN category_id int;
UPDATE items SET category_id = id % 3;
SELECT category_id, AVG(embedding) FROM items GROUP BY category_id;
SELECT category_id, AVG(embedding) FROM items GROUP BY category_id ORDER BY category_id;
-- # Indexing: HNSW
CREATE INDEX ON items USING hnsw (embedding vector_l2_ops);
CREATE INDEX ON items USING hnsw (embedding vector_ip_ops);
CREATE INDEX ON items USING hnsw (embedding vector_cosine_ops);
CREATE INDEX ON items USING hnsw (embedding vector_l1_ops);
CREATE INDEX items_m_idx ON items USING hnsw (embedding vector_l2_ops) WITH (m = 16, ef_construction = 64);
SET hnsw.ef_search = 100;
SHOW hnsw.ef_search;
BEGIN;
SET LOCAL hnsw.ef_search = 100;
SELECT * FROM items ORDER BY embedding <-> '[3,1,2]' LIMIT 5;
COMMIT;
SET maintenance_work_mem = '8GB';
SET max_parallel_maintenance_workers = 7;
SELECT phase, round(100.0 * blocks_done / nullif(blocks_total, 0), 1) AS "%" FROM pg_stat_progress_create_index;
DROP INDEX items_m_idx;
-- # Indexing: IVFFlat
CREATE INDEX ON items USING ivfflat (embedding vector_l2_ops) WITH (lists = 100);
CREATE INDEX ON items USING ivfflat (embedding vector_ip_ops) WITH (lists = 100);
CREATE INDEX ON items USING ivfflat (embedding vector_cosine_ops) WITH (lists = 100);
SET ivfflat.probes = 10;
SHOW ivfflat.probes;
BEGIN;
SET LOCAL ivfflat.probes = 10;
SELECT * FROM items ORDER BY embedding <=> '[3,1,2]' LIMIT 5;
COMMIT;
SELECT phase, round(100.0 * tuples_done / nullif(tuples_total, 0), 1) AS "%" FROM pg_stat_progress_create_index;
-- # Filtering
SELECT * FROM items WHERE category_id = 1 ORDER BY embedding <-> '[3,1,2]' LIMIT 5;
CREATE INDEX ON items (category_id);
CREATE INDEX ON items USING hnsw (embedding vector_l2_ops) WHERE (category_id = 1);
SELECT * FROM items WHERE category_id = 1 ORDER BY embedding <-> '[3,1,2]' LIMIT 5;
-- # Iterative index scans
SET hnsw.iterative_scan = strict_order;
SET hnsw.iterative_scan = relaxed_order;
SET ivfflat.iterative_scan = relaxed_order;
SET hnsw.max_scan_tuples = 20000;
SET hnsw.scan_mem_multiplier = 2;
SET ivfflat.max_probes = 100;
WITH relaxed_results AS MATERIALIZED (SELECT id, embedding <-> '[1,2,3]' AS distance FROM items WHERE category_id = 1 ORDER BY distance LIMIT 5) SELECT * FROM relaxed_results ORDER BY distance + 0;
WITH nearest_results AS MATERIALIZED (SELECT id, embedding <-> '[1,2,3]' AS distance FROM items ORDER BY distance LIMIT 5) SELECT * FROM nearest_results WHERE distance < 5 ORDER BY distance;
WITH nearest AS MATERIALIZED (SELECT id, embedding <-> '[1,2,3]' AS distance FROM items WHERE category_id = 99 ORDER BY distance LIMIT 5) SELECT count(*) FROM nearest;
WITH nearest AS (SELECT id FROM items ORDER BY embedding <=> '[1,2,3]' LIMIT 3) SELECT items.id, items.category_id FROM items JOIN nearest ON nearest.id = items.id ORDER BY items.id;
WITH firsts AS (SELECT DISTINCT ON (category_id) category_id, id FROM items ORDER BY category_id, embedding <-> '[1,2,3]') SELECT * FROM firsts ORDER BY id;
RESET hnsw.iterative_scan;
RESET ivfflat.iterative_scan;
-- # Half-precision indexing
CREATE INDEX ON items USING hnsw ((embedding::halfvec(3)) halfvec_l2_ops);
SELECT * FROM items ORDER BY embedding::halfvec(3) <-> '[1,2,3]' LIMIT 5;
-- # Half-precision vectors
CREATE TABLE hitems (id bigserial PRIMARY KEY, embedding halfvec(3));
INSERT INTO hitems (embedding) VALUES ('[1,2,3]'), ('[4,5,6]'), ('[1.5,0.25,-2]');
SELECT * FROM hitems ORDER BY embedding <-> '[3,1,2]' LIMIT 5;
SELECT * FROM hitems ORDER BY embedding <=> '[3,1,2]' LIMIT 5;
CREATE INDEX ON hitems USING hnsw (embedding halfvec_l2_ops);
SELECT AVG(embedding) FROM hitems;
DROP TABLE hitems;
-- # Binary vectors
CREATE TABLE bitems (id bigserial PRIMARY KEY, embedding bit(3));
INSERT INTO bitems (embedding) VALUES ('000'), ('111'), ('101');
SELECT * FROM bitems ORDER BY embedding <~> '101' LIMIT 5;
SELECT * FROM bitems ORDER BY embedding <%> '101' LIMIT 5;
CREATE INDEX ON bitems USING hnsw (embedding bit_hamming_ops);
CREATE INDEX ON bitems USING hnsw (embedding bit_jaccard_ops);
DROP TABLE bitems;
-- # Binary quantization
CREATE INDEX ON items USING hnsw ((binary_quantize(embedding)::bit(3)) bit_hamming_ops);
-- ties
SELECT * FROM items ORDER BY binary_quantize(embedding)::bit(3) <~> binary_quantize('[1,-2,3]') LIMIT 10;
SELECT * FROM (SELECT * FROM items ORDER BY binary_quantize(embedding)::bit(3) <~> binary_quantize('[1,-2,3]') LIMIT 20) ORDER BY embedding <=> '[1,-2,3]' LIMIT 5;
-- # Sparse vectors
CREATE TABLE sitems (id bigserial PRIMARY KEY, embedding sparsevec(5));
INSERT INTO sitems (embedding) VALUES ('{1:1,3:2,5:3}/5'), ('{1:4,3:5,5:6}/5');
SELECT * FROM sitems ORDER BY embedding <-> '{1:3,3:1,5:2}/5' LIMIT 5;
SELECT * FROM sitems ORDER BY embedding <#> '{1:3,3:1,5:2}/5' LIMIT 5;
CREATE INDEX ON sitems USING hnsw (embedding sparsevec_l2_ops);
DROP TABLE sitems;
-- # Hybrid search
CREATE TABLE titems (id bigserial PRIMARY KEY, content text, embedding vector(3));
INSERT INTO titems (content, embedding) VALUES ('hello search world', '[1,2,3]'), ('goodbye', '[4,5,6]');
-- refused: plainto_tsquery
SELECT id, content FROM titems, plainto_tsquery('hello search') query WHERE to_tsvector(content) @@ query ORDER BY ts_rank_cd(to_tsvector(content), query) DESC LIMIT 5;
DROP TABLE titems;
-- # Subvectors
CREATE TABLE vitems (id bigserial PRIMARY KEY, embedding vector(5));
INSERT INTO vitems (embedding) VALUES ('[1,2,3,4,5]'), ('[5,4,3,2,1]'), ('[1,0,1,0,1]');
CREATE INDEX ON vitems USING hnsw ((subvector(embedding, 1, 3)::vector(3)) vector_cosine_ops);
SELECT * FROM vitems ORDER BY subvector(embedding, 1, 3)::vector(3) <=> subvector('[1,2,3,4,5]'::vector, 1, 3) LIMIT 5;
SELECT * FROM (SELECT * FROM vitems ORDER BY subvector(embedding, 1, 3)::vector(3) <=> subvector('[1,2,3,4,5]'::vector, 1, 3) LIMIT 20) ORDER BY embedding <=> '[1,2,3,4,5]' LIMIT 5;
DROP TABLE vitems;
-- # Troubleshooting
BEGIN;
SET LOCAL enable_indexscan = off;
SELECT * FROM items ORDER BY embedding <-> '[3,1,2]' LIMIT 5;
COMMIT;
-- # Reference: functions, operators, aggregates
SELECT l2_distance(embedding, '[3,1,2]') FROM items ORDER BY id;
SELECT inner_product(embedding, '[3,1,2]') FROM items ORDER BY id;
SELECT cosine_distance(embedding, '[3,1,2]') FROM items ORDER BY id;
SELECT l1_distance(embedding, '[3,1,2]') FROM items ORDER BY id;
SELECT vector_dims(embedding), vector_norm(embedding), l2_normalize(embedding) FROM items ORDER BY id;
SELECT binary_quantize(embedding), subvector(embedding, 2, 2) FROM items ORDER BY id;
SELECT embedding + '[1,1,1]', embedding - '[1,1,1]', embedding * '[2,2,2]', embedding || '[7]' FROM items ORDER BY id;
SELECT embedding < '[1,1,1]', embedding = '[1,1,1]' FROM items ORDER BY id;
SELECT SUM(embedding) FROM items;
SELECT category_id, SUM(embedding) FROM items GROUP BY category_id ORDER BY category_id;
SELECT hamming_distance('101'::bit(3), '111'::bit(3)), jaccard_distance('101'::bit(3), '111'::bit(3));
SELECT '[1,2,3]'::vector::halfvec(3), '[1,2,3]'::vector::sparsevec, '{1:1,3:2}/3'::sparsevec::vector;
SELECT l2_norm('[3,4]'::halfvec), l2_norm('{1:3,2:4}/2'::sparsevec), l2_normalize('{1:3,2:4}/2'::sparsevec);
SELECT ARRAY[1,2,3]::vector, '[1,2,3]'::vector::real[];
DROP TABLE items;
