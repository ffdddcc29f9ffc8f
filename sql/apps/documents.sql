-- Document-store SQL (LangChain/LlamaIndex-style metadata filters and
-- edits, dashboards' conditional counts) through the proxy against
-- PostgreSQL (tests/proxy_application_sql.rs).

-- # schema
CREATE TABLE chunks (id bigint PRIMARY KEY, doc text, meta jsonb, embedding vector(3));
INSERT INTO chunks VALUES (1, 'a', '{"source": {"file": "x.pdf", "page": 1}, "tags": ["red"]}', '[1,0,0]'), (2, 'a', '{"source": {"file": "x.pdf", "page": 2}, "tags": []}', '[0,1,0]'), (3, 'b', '{"source": {"file": "y.md"}, "tags": ["red", "blue"]}', '[0,0,1]'), (4, 'c', NULL, '[1,1,1]');

-- # filters
SELECT id FROM chunks WHERE meta #>> '{source,file}' = 'x.pdf' ORDER BY id;
SELECT id, meta #> '{source,page}' AS page FROM chunks WHERE meta @> '{"tags": ["red"]}' ORDER BY id;
SELECT id FROM chunks WHERE meta -> 'tags' ? 'blue' ORDER BY embedding <-> '[0,0,1]' LIMIT 1;
SELECT count(*) FILTER (WHERE meta #>> '{source,file}' = 'x.pdf') AS x, count(*) FILTER (WHERE meta IS NULL) AS none, count(*) AS n FROM chunks;
SELECT doc, count(*) FILTER (WHERE jsonb_array_length(meta -> 'tags') > 0) AS tagged FROM chunks GROUP BY doc ORDER BY doc;

-- # edits
UPDATE chunks SET meta = jsonb_set(meta, '{source,page}', '5') WHERE id = 3 RETURNING id, meta;
UPDATE chunks SET meta = jsonb_set(coalesce(meta, '{}'), '{tags}', '["new"]') WHERE id = 4 RETURNING meta;
UPDATE chunks SET meta = jsonb_insert(meta, '{tags,0}', '"first"') WHERE doc = 'a' RETURNING id, meta -> 'tags' AS tags;
SELECT id, jsonb_strip_nulls(jsonb_set(meta, '{gone}', 'null')) AS meta FROM chunks ORDER BY id;
DROP TABLE chunks;
