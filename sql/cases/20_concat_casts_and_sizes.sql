-- `||` of text with a number or boolean is text (the other side cast to
-- text, a boolean spelled out), of vectors a vector; `boolean::text` is
-- 'true'/'false'; pg_size_pretty's units and half rounding; the size
-- functions by OID and by name (values differ between the servers, so
-- only their relations are compared), NULL for an OID no relation has,
-- 42P01 for an unknown name.
SELECT 'n' || 1 AS a, 1 || 'n' AS b, 'a' || 1.5 AS c, 'x' || true AS d, 'q' || 2::bigint AS e, 'n' || NULL AS f;
SELECT '[1]'::vector || '[2,3]' AS v, true::text AS t, false::varchar(3) AS f, (1 = 2)::text AS g;
CREATE TABLE sz_items (id int PRIMARY KEY, label text);
INSERT INTO sz_items SELECT i, 'label ' || i FROM generate_series(1, 500) i;
SELECT label FROM sz_items WHERE id IN (1, 500) ORDER BY id;
SELECT v, pg_size_pretty(v) FROM (VALUES (0::bigint), (1), (-1), (10239), (10240), (-10240), (10751), (10752), (1048575), (10485247), (10485248), (10485759), (10485760), (1073741823), (10737418239), (10737418240), (1099511627776), (10995116277760), (11258999068426240), (9223372036854775807), (-9223372036854775807), (42)) AS t(v) ORDER BY v;
SELECT pg_relation_size('sz_items') > 0 AS heap, pg_table_size('sz_items'::regclass) >= pg_relation_size('sz_items') AS tbl, pg_indexes_size('sz_items') > 0 AS idx, pg_total_relation_size('sz_items') = pg_table_size('sz_items') + pg_indexes_size('sz_items') AS total;
SELECT pg_relation_size('sz_items_pkey') > 0 AS pkey, pg_indexes_size('sz_items_pkey') AS idx_of_idx, pg_relation_size(0) AS none, pg_table_size(NULL) AS null_arg;
SELECT pg_relation_size('sz_nosuch');
DROP TABLE sz_items;
