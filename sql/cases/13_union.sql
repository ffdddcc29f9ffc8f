-- UNION, INTERSECT, EXCEPT [ALL] outside WITH (common numeric type, ORDER BY output columns,
-- LIMIT) and generate_series in the select list.
SELECT 1 UNION ALL SELECT 2;
SELECT 1 AS a UNION SELECT 1 UNION SELECT 2 ORDER BY a DESC;
SELECT 1::int AS a, 'x' AS b UNION ALL SELECT 2::bigint, 'y' ORDER BY 2 DESC LIMIT 1;
SELECT 1 UNION SELECT 1, 2;
SELECT typname FROM pg_type WHERE oid = 23 UNION ALL SELECT typname FROM pg_type WHERE oid = 25 ORDER BY typname;
SELECT 1 AS a UNION SELECT 2 ORDER BY a + 1;
SELECT generate_series(1, 3), generate_series(1, 2);
SELECT generate_series(5, 1, -2), generate_series(1::bigint, 2);
SELECT generate_series(1, 3, 0);
SELECT * FROM generate_series(1, 4, 2);
SELECT 1 INTERSECT SELECT 1;
SELECT x FROM unnest(ARRAY[1, 1, 2, 3, 3, 3]) AS u(x) INTERSECT ALL SELECT y FROM unnest(ARRAY[1, 3, 3, 4]) AS v(y) ORDER BY 1;
SELECT x FROM unnest(ARRAY[1, 1, 2, 3, 3, 3]) AS u(x) INTERSECT SELECT y FROM unnest(ARRAY[1, 3, 3, 4]) AS v(y) ORDER BY 1;
SELECT x FROM unnest(ARRAY[1, 1, 2, 3, 3, 3]) AS u(x) EXCEPT ALL SELECT y FROM unnest(ARRAY[1, 3, 3, 4]) AS v(y) ORDER BY 1;
SELECT x FROM unnest(ARRAY[1, 1, 2, 3, 3, 3]) AS u(x) EXCEPT SELECT y FROM unnest(ARRAY[1, 3, 3, 4]) AS v(y) ORDER BY 1;
SELECT 1 UNION SELECT 2 INTERSECT SELECT 2 ORDER BY 1;
SELECT 1 EXCEPT SELECT 1, 2;
SELECT NULL::int INTERSECT SELECT NULL::int;
