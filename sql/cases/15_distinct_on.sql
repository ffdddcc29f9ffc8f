-- SELECT DISTINCT ON: the first row of each group in the ORDER BY's
-- order; the expressions must lead the ORDER BY (42P10), those it lacks
-- are sorted after it, and without ORDER BY the rows come by them.
CREATE TABLE don_t (id int PRIMARY KEY, cat int, name text, embedding vector(2));
INSERT INTO don_t VALUES (1,1,'a','[1,1]'),(2,1,'b','[0,1]'),(3,2,'c','[5,5]'),(4,2,NULL,'[1,0]'),(5,3,'e','[2,2]'),(6,NULL,'f','[3,3]'),(7,NULL,'g','[0,0]');
SELECT DISTINCT ON (cat) cat, id FROM don_t ORDER BY cat, id DESC;
SELECT DISTINCT ON (cat) cat, id, embedding <-> '[0,0]' AS d FROM don_t ORDER BY cat, embedding <-> '[0,0]';
SELECT DISTINCT ON (cat) cat, id FROM don_t ORDER BY cat DESC NULLS LAST, id;
SELECT DISTINCT ON (1) cat, id FROM don_t ORDER BY 1, 2 DESC;
SELECT DISTINCT ON (cat, name) cat, name FROM don_t ORDER BY cat;
SELECT DISTINCT ON (cat) cat, id FROM don_t ORDER BY id;
SELECT DISTINCT ON (cat) cat, id FROM don_t ORDER BY cat, id LIMIT 2 OFFSET 1;
SELECT DISTINCT ON (c) cat AS c, id FROM don_t ORDER BY c, id DESC;
SELECT DISTINCT ON (cat % 2) cat % 2 AS parity, id FROM don_t ORDER BY cat % 2, id;
SELECT DISTINCT ON (cat) cat, count(*) FROM don_t GROUP BY cat, id ORDER BY cat, count(*);
DROP TABLE don_t;
