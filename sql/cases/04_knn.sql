-- KNN by exact scan (no index): the same rows and distances as pgvector.
CREATE TABLE items (id bigint PRIMARY KEY, category int, embedding vector(3));
INSERT INTO items VALUES (1, 1, '[1,2,3]'), (2, 2, '[4,5,6]'), (3, 1, '[1,1,1]'), (4, 3, '[-1,0,2]'), (5, 2, '[2,2,2]'), (6, 1, '[0,0,9]');
SELECT id, embedding <-> '[1,2,3]' AS d FROM items ORDER BY embedding <-> '[1,2,3]' LIMIT 3;
SELECT id FROM items ORDER BY embedding <=> '[1,1,1]' LIMIT 2;
SELECT id FROM items ORDER BY embedding <#> '[1,1,1]' LIMIT 2;
SELECT id FROM items ORDER BY embedding <+> '[1,1,1]' LIMIT 2;
SELECT id, embedding <-> '[1,2,3]' AS d FROM items WHERE category = 1 ORDER BY d LIMIT 5;
SELECT * FROM (SELECT id, embedding FROM items ORDER BY binary_quantize(embedding)::bit(3) <~> binary_quantize('[1,-2,3]'::vector) LIMIT 4) ORDER BY embedding <=> '[1,-2,3]' LIMIT 2;
WITH nearest AS MATERIALIZED (SELECT id, embedding <-> '[1,2,3]' AS distance FROM items ORDER BY distance LIMIT 5) SELECT * FROM nearest WHERE distance < 3 ORDER BY distance;
DROP TABLE items;
