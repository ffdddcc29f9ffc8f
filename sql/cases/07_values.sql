-- VALUES lists as derived tables with column alias lists: the shape of
-- the proxy's query combining partial aggregates.
SELECT c0, sum(c1)::int8 AS "count", sum(c2)::float8 / sum(c3)::float8 AS m, min(c2), max(c2) FROM (VALUES (1, 2::int8, 3::float8, 2::int8), (2, 5::int8, 10::float8, 4::int8), (1, 4::int8, 6::float8, 4::int8)) AS p(c0, c1, c2, c3) GROUP BY c0 ORDER BY 2 DESC NULLS FIRST LIMIT 2;
SELECT c0, sum(c1)::int8 FROM (VALUES (1, 2::int8), (2, 5::int8), (3, 4::int8)) AS p(c0, c1) GROUP BY c0 ORDER BY 2 LIMIT 1 OFFSET 1;
SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v(x, y) ORDER BY x DESC;
SELECT x, x + 1 AS y FROM (VALUES (1), (2::int8)) AS v(x) ORDER BY 1;
SELECT count(*), sum(x) FROM (VALUES (1), (2), (3)) AS v(x) WHERE x > 1;
SELECT sum(c0)::int8 AS n FROM (VALUES (NULL::int8)) AS p(c0) WHERE false;
SELECT * FROM (VALUES (1)) AS p(a, b);
