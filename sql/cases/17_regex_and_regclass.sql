-- Regular-expression operators (as psql's describe commands write them,
-- OPERATOR(pg_catalog.~) and COLLATE pg_catalog.default included) and
-- regclass / regtype values, which print as names.
CREATE TABLE rx_t (id int PRIMARY KEY, name text, embedding vector(2));
INSERT INTO rx_t VALUES (1, 'apple', '[1,0]'), (2, 'Apricot', '[0,1]'), (3, 'banana', '[1,1]'), (4, NULL, '[2,2]');
SELECT id FROM rx_t WHERE name ~ '^a' ORDER BY id;
SELECT id FROM rx_t WHERE name ~* '^a' ORDER BY id;
SELECT id FROM rx_t WHERE name !~ '^a' ORDER BY id;
SELECT id FROM rx_t WHERE name !~* 'AN' ORDER BY id;
SELECT id FROM rx_t WHERE name OPERATOR(pg_catalog.~) '^(apple|banana)$' COLLATE pg_catalog.default ORDER BY id;
SELECT id FROM rx_t WHERE id OPERATOR(pg_catalog.=) 2;
SELECT 'abc' ~ 'b', 'abc' ~ '^b', 'a.c' ~ 'a\.c', NULL::text ~ 'a';
SELECT name COLLATE "C" FROM rx_t WHERE id = 1;
SELECT 'rx_t'::regclass, 'rx_t'::regclass::text, 'int4'::regtype, 'vector'::regtype, 0::regclass;
SELECT pg_typeof('rx_t'::regclass), pg_typeof('int4'::regtype);
SELECT to_regclass('rx_t'), to_regclass('no_such_table'), to_regtype('integer');
SELECT c.relname FROM pg_class c WHERE c.oid = 'rx_t'::regclass;
SELECT count(*) FROM pg_attribute WHERE attrelid = 'rx_t'::regclass AND attnum > 0;
SELECT 'rx_t'::regclass = to_regclass('rx_t');
SELECT 'no_such_table'::regclass;
SELECT array(SELECT name FROM rx_t WHERE name IS NOT NULL ORDER BY id), array(SELECT id FROM rx_t WHERE id > 9);
SELECT array_to_string(array(SELECT name FROM rx_t ORDER BY id), ', '), array_to_string(array(SELECT name FROM rx_t ORDER BY id), ',', '*');
SELECT array_to_string(ARRAY[1, 2, 3], '-'), array_to_string(NULL::int[], ','), array_to_string(ARRAY['a'], NULL);
SELECT r.rolname, ARRAY(SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b ON (m.roleid = b.oid) WHERE m.member = r.oid) AS memberof FROM pg_roles r WHERE r.rolname = 'postgres';
DROP TABLE rx_t;
