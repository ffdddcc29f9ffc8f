-- Ranking window functions (row_number, rank, dense_rank, with and
-- without PARTITION BY, inside expressions), ranks over a KNN ordering
-- with and without an HNSW index, pgvector's hybrid-search query
-- (reciprocal rank fusion of a KNN and a keyword ranking through a FULL
-- OUTER JOIN), and RIGHT / FULL joins.
CREATE TABLE wdocs (id bigint PRIMARY KEY, category int, content text, embedding vector(3));
INSERT INTO wdocs VALUES (1, 1, 'red apple', '[1,0,0]'), (2, 1, 'green apple', '[0.9,0.1,0]'), (3, 2, 'blue sky', '[0,1,0]'), (4, 2, 'red sky', '[0.5,0.5,0]'), (5, 3, 'night', '[0,0,1]'), (6, 3, 'red night', '[0.5,0,0.5]');
SELECT id, row_number() OVER (ORDER BY id DESC) AS rn, rank() OVER (ORDER BY category) AS r, dense_rank() OVER (ORDER BY category) AS dr FROM wdocs ORDER BY id;
SELECT id FROM wdocs WHERE row_number() OVER (ORDER BY id) > 1;
SELECT id FROM wdocs WHERE count(*) > 1;
SELECT id FROM wdocs WHERE id > (SELECT count(*) FROM wdocs) - 2 ORDER BY id;
SELECT id, category, row_number() OVER (PARTITION BY category ORDER BY id DESC) FROM wdocs ORDER BY category, id;
SELECT id, rank() OVER (ORDER BY embedding <=> '[1,0,0]') AS rank FROM wdocs ORDER BY embedding <=> '[1,0,0]' LIMIT 3;
CREATE INDEX ON wdocs USING hnsw (embedding vector_cosine_ops);
SELECT id, RANK () OVER (ORDER BY embedding <=> '[1,0,0]') AS rank FROM wdocs ORDER BY embedding <=> '[1,0,0]' LIMIT 3;
WITH semantic_search AS (SELECT id, RANK () OVER (ORDER BY embedding <=> '[1,0,0]') AS rank FROM wdocs ORDER BY embedding <=> '[1,0,0]' LIMIT 4), keyword_search AS (SELECT id, RANK () OVER (ORDER BY id) AS rank FROM wdocs WHERE content LIKE '%red%' ORDER BY id LIMIT 4) SELECT COALESCE(semantic_search.id, keyword_search.id) AS id, COALESCE(1.0::float8 / (60 + semantic_search.rank), 0.0) + COALESCE(1.0::float8 / (60 + keyword_search.rank), 0.0) AS score FROM semantic_search FULL OUTER JOIN keyword_search ON semantic_search.id = keyword_search.id ORDER BY score DESC, id LIMIT 5;
SELECT id, row_number() OVER () IS NOT NULL FROM wdocs ORDER BY id LIMIT 2;
SELECT id, 10 - rank() OVER (ORDER BY category DESC) AS x FROM wdocs ORDER BY x, id;
DROP TABLE wdocs;
CREATE TABLE ja (id int PRIMARY KEY, a text);
CREATE TABLE jb (id int PRIMARY KEY, b text);
INSERT INTO ja VALUES (1, 'x'), (2, 'y');
INSERT INTO jb VALUES (2, 'p'), (3, 'q');
SELECT ja.id, jb.id, a, b FROM ja FULL OUTER JOIN jb ON ja.id = jb.id ORDER BY ja.id NULLS LAST, jb.id;
SELECT ja.id, jb.id, a, b FROM ja RIGHT JOIN jb ON ja.id = jb.id ORDER BY jb.id;
SELECT ja.id, jb.id FROM ja FULL JOIN jb ON false ORDER BY 1, 2;
DROP TABLE ja;
DROP TABLE jb;
