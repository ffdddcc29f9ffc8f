-- pgvector's SQL surface as its own regression tests exercise it:
-- PostgreSQL's function resolution for untyped literals (one candidate:
-- hamming_distance / jaccard_distance take bit, vector_cmp & co. their
-- type; an untyped argument beside a typed one takes its type), B'…'
-- literals in bit columns, casts from arrays to sparsevec, array_fill,
-- round(numeric, n), output column names of nested casts, type modifier
-- and unknown type errors; LATERAL subqueries (pgvector's self-join for
-- each row's nearest neighbour), where an alias hides the table's name.
SELECT hamming_distance('111', '110'), hamming_distance('', ''), jaccard_distance('1111', '1100'), jaccard_distance('', '');
SELECT hamming_distance('111', '00');
SELECT jaccard_distance('1111', '000');
SELECT hamming_distance('111', '0000'::varbit(4));
SELECT hamming_distance('12', '10');
SELECT vector_cmp('[1,2,3]', '[1,2,3]'), vector_cmp('[1,2]', '[1,2,3]'), vector_cmp('[2,3]', '[1,2,3]');
SELECT halfvec_cmp('[1,2,3]', '[0,0,0]'), sparsevec_cmp('{1:1,2:2}/2', '{1:2,2:3,3:4}/3'), sparsevec_cmp('{}/3', '{}/3');
SELECT vector_cmp('[1,2]'::halfvec, '[1,2]');
SELECT inner_product('[1,2]'::halfvec, '[3,4]'), inner_product('{1:1,3:3,5:5}/5'::sparsevec, '{2:4,3:6,4:8}/5'), inner_product('[3,4]', '[1,2]'::halfvec);
SELECT inner_product('{1:1,2:2}/2'::sparsevec, '{1:3}/1');
SELECT inner_product('[1,2]', '[3,4]');
SELECT l2_norm('{}/2'::sparsevec), l2_norm('{1:3,2:4}/2'::sparsevec);
SELECT round(l2_norm('[1,1]'::halfvec)::numeric, 5)::float8, round(1.005::numeric, 2)::float8, round(-2.5::numeric, 0)::float8, round(1234.5::numeric, -2)::float8;
CREATE TABLE pgv_bits (id int PRIMARY KEY, val bit(3));
INSERT INTO pgv_bits VALUES (1, B'000'), (2, B'100'), (3, B'111'), (4, NULL);
INSERT INTO pgv_bits VALUES (5, B'1101');
SELECT id, val, val <~> B'111' AS d FROM pgv_bits ORDER BY val <~> B'111', id;
SELECT B'101', B'' = B'', B'10' < B'11';
DROP TABLE pgv_bits;
SELECT ARRAY[1,0,2,0,3,0]::sparsevec, ARRAY[1.0,0.0,2.0]::sparsevec, ARRAY[1,0,2]::float4[]::sparsevec, ARRAY[0,0,3]::float8[]::sparsevec;
SELECT '{1,0,2,0,3,0}'::real[]::sparsevec, '{1,0,2,0,3,0}'::real[]::sparsevec(6);
SELECT '{1,0,2,0,3,0}'::real[]::sparsevec(5);
SELECT '{NULL}'::real[]::sparsevec;
SELECT '{NaN}'::real[]::sparsevec;
SELECT '{Infinity}'::real[]::sparsevec;
SELECT '{4e38,0}'::double precision[]::sparsevec;
SELECT '{}'::real[]::sparsevec;
SELECT ARRAY['a']::sparsevec;
SELECT ARRAY[1,2,3]::float4[]::vector, ARRAY[1,2]::numeric[]::vector, '{1,2}'::real[]::vector, '[1,2]'::vector::halfvec;
SELECT array_fill(7, ARRAY[3]), array_fill(1.5::float8, ARRAY[2]), array_fill(2, ARRAY[0]), cardinality(array_fill(0, ARRAY[2000]));
SELECT array_fill(0, ARRAY[3])::vector, array_fill(1, ARRAY[4])::vector::sparsevec;
SELECT array_fill(1, ARRAY[-1]);
SELECT array_fill(1, NULL);
SELECT '[1,2,3]'::vector('a');
SELECT '{}/3'::sparsevec('a');
SELECT '[1,2,3]'::vector(3, 2);
CREATE TABLE pgv_bad (val minivec(3));
SELECT '[1,2,3]'::vector::minivec(3);
CREATE TABLE pgv_lat (id int PRIMARY KEY, val vector(3));
INSERT INTO pgv_lat VALUES (1, '[0,0,0]'), (2, '[1,2,3]'), (3, '[1,1,1]'), (4, NULL), (5, '[1,2,4]');
SELECT * FROM pgv_lat t CROSS JOIN LATERAL (SELECT * FROM pgv_lat t2 ORDER BY val <=> t.val, id LIMIT 1) t2 WHERE t.val != '[0,0,0]' ORDER BY t.id;
SELECT * FROM pgv_lat CROSS JOIN LATERAL (SELECT * FROM pgv_lat t2 ORDER BY val <-> pgv_lat.val, id LIMIT 1) t2 WHERE pgv_lat.val IS NOT NULL ORDER BY pgv_lat.id;
SELECT t.id, n.id AS nid, n.d FROM pgv_lat t, LATERAL (SELECT id, val <-> t.val AS d FROM pgv_lat x WHERE x.id <> t.id ORDER BY val <-> t.val, id LIMIT 2) n ORDER BY 1, 3, 2;
SELECT t.id, n.c FROM pgv_lat t LEFT JOIN LATERAL (SELECT count(*) AS c FROM pgv_lat x WHERE x.id < t.id HAVING count(*) > 1) n ON true ORDER BY 1;
SELECT t.id, n.m FROM pgv_lat t JOIN LATERAL (SELECT max(x.id) AS m FROM pgv_lat x WHERE x.id <= t.id) n ON n.m > 2 ORDER BY 1;
SELECT * FROM LATERAL (SELECT 1 AS one) s;
DROP TABLE pgv_lat;
