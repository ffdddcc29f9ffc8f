-- Arrays: constructors, literals and casts, = ANY / <> ALL, subscripts,
-- unnest, array_agg, array columns (vector[] too) and pgvector's casts
-- between vectors and real[] / double precision[] / integer[].
CREATE EXTENSION IF NOT EXISTS vector;
SELECT ARRAY[1, 2, 3], ARRAY['a', 'b c', NULL, '', 'NULL', 'x"y'], ARRAY[1, 2]::bigint[];
SELECT '{1,2}'::int[], ' { 1 , 2 } '::int[], '{}'::text[], ARRAY[]::int[];
SELECT '{1,2'::int[];
SELECT '{1,x}'::int[];
SELECT ARRAY[];
SELECT ARRAY[1, 'a'];
SELECT ARRAY['a', 1];
SELECT ARRAY[1::bigint, 2], ARRAY[1.5::real, 2::real];
SELECT 1 = ANY('{1,2}'::int[]), 3 <> ALL(ARRAY[1, 2]), 1 <> ALL(ARRAY[1, NULL]), 5 > ALL('{}'::int[]), 2 = ANY(NULL::int[]);
SELECT 'b' = ANY('{a,b}'), 'c' = ANY(ARRAY['a', NULL]);
SELECT (ARRAY[5, 6, 7])[2], ('{5}'::int[])[9], (ARRAY['a', 'b'])[0];
SELECT cardinality(ARRAY[1, 2, 3]), array_length(ARRAY[1, 2], 1), array_length('{}'::int[], 1), array_lower(ARRAY[4], 1), array_upper(ARRAY[4, 5], 1);
SELECT ARRAY[1, 2] = ARRAY[1, 2], ARRAY[1, 2] < ARRAY[1, 3], ARRAY[1] < ARRAY[1, 0], ARRAY[1, 2]::text;
SELECT * FROM unnest(ARRAY[4, 5]) WITH ORDINALITY;
SELECT * FROM unnest('{a,b}'::text[]) AS u(x);
SELECT '[1,2,3]'::vector::real[], '[1,2]'::halfvec::real[];
SELECT ARRAY[1, 2, 3]::vector, '{1.5,2}'::real[]::vector(2), '{1.5,2}'::double precision[]::halfvec, ARRAY[1, 2]::halfvec(2);
SELECT ARRAY[1, NULL]::vector;
SELECT '{1,2}'::bigint[]::vector;
SELECT '{1,2}'::int[]::vector(3);
SELECT '{}'::real[]::vector;
SELECT ARRAY['[1,2]'::vector, '[3,4]'], ARRAY['[1,2]'::halfvec], ARRAY['{1:1}/2'::sparsevec];
CREATE TABLE arr_t (id int PRIMARY KEY, tags text[], nums int[], vs vector(2)[], hs halfvec[]);
INSERT INTO arr_t VALUES (1, '{a,b}', ARRAY[1, 2], ARRAY['[1,2]'::vector, '[3,4]'], '{"[1,2]"}'), (2, NULL, '{}', '{"[5,6]"}', NULL);
INSERT INTO arr_t VALUES (3, NULL, NULL, '{"[1,2,3]"}', NULL);
INSERT INTO arr_t (id, nums) VALUES (4, '{x}');
SELECT * FROM arr_t ORDER BY id;
SELECT id, tags[2], vs[1], vs[1] <-> '[0,0]' FROM arr_t ORDER BY id;
SELECT id FROM arr_t WHERE 'a' = ANY(tags) OR 2 = ANY(nums) ORDER BY id;
SELECT array_agg(id ORDER BY id), array_agg(id ORDER BY id DESC), array_agg(tags[1] ORDER BY id) FROM arr_t;
SELECT array_agg(id) FROM arr_t WHERE id > 5;
SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = 'arr_t'::regclass AND a.attnum > 0 ORDER BY a.attnum;
SELECT t.typname, e.typname AS elem, t.typcategory FROM pg_type t JOIN pg_type e ON e.oid = t.typelem WHERE t.typname IN ('_int4', '_oid', '_text', '_vector', '_halfvec', '_float4') ORDER BY t.typname;
SELECT current_schemas(true), current_schemas(false);
DROP TABLE arr_t;
