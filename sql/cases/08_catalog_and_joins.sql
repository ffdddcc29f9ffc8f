-- The system catalog as data, joins and subqueries: what drivers' and
-- ORMs' introspection sends (pgvector's register_vector, asyncpg's type
-- lookup, SQLAlchemy's has_table / get_columns), compared by name (OIDs
-- of extension types differ between servers).
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE cat_items (id bigserial PRIMARY KEY, embedding vector(3), name varchar(20) NOT NULL);
CREATE INDEX cat_items_hnsw ON cat_items USING hnsw (embedding vector_l2_ops);
SELECT typname FROM pg_type WHERE oid IN (to_regtype('vector'), to_regtype('_vector'), to_regtype('halfvec'), to_regtype('_halfvec'), to_regtype('sparsevec'), to_regtype('_sparsevec')) ORDER BY typname;
SELECT typname FROM pg_type WHERE oid IN (to_regtype('vector'), to_regtype('halfvec'), to_regtype('sparsevec')) ORDER BY typname;
SELECT t.typname, t.typtype, t.typlen, ns.nspname FROM pg_catalog.pg_type AS t INNER JOIN pg_catalog.pg_namespace ns ON (ns.oid = t.typnamespace) WHERE t.typname = 'vector' AND ns.nspname = 'public';
SELECT t.typname, t.typtype, t.typlen, t.typbyval, t.typcategory, n.nspname FROM pg_catalog.pg_type t LEFT OUTER JOIN pg_catalog.pg_range r ON r.rngtypid = t.oid INNER JOIN pg_catalog.pg_namespace n ON t.typnamespace = n.oid WHERE t.oid IN (16, 20, 23, 25, 701, 1043) ORDER BY t.oid;
SELECT count(*) FROM pg_type WHERE typname = 'hstore';
SELECT c.relname, c.relkind, n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relname LIKE 'cat_items%' AND c.relkind IN ('r', 'i') ORDER BY c.relname;
SELECT pg_catalog.pg_class.relname FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace WHERE pg_catalog.pg_class.relname = 'cat_items' AND pg_catalog.pg_class.relkind = ANY (ARRAY['r', 'p', 'f', 'v', 'm']) AND pg_catalog.pg_table_is_visible(pg_catalog.pg_class.oid) AND pg_catalog.pg_namespace.nspname != 'pg_catalog';
SELECT pg_catalog.pg_class.relname FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace WHERE pg_catalog.pg_class.relname = 'no_such_table' AND pg_catalog.pg_table_is_visible(pg_catalog.pg_class.oid);
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attnum, a.atthasdef FROM pg_attribute a WHERE a.attrelid = 'cat_items'::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum;
SELECT a.attname, pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attrelid = 'public.cat_items'::regclass AND a.attnum > 0 ORDER BY a.attnum;
SELECT i.relname, x.indisprimary, x.indisunique, x.indnatts FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = 'cat_items'::regclass ORDER BY i.relname;
SELECT pg_get_indexdef(x.indexrelid), pg_get_constraintdef(c.oid), c.contype, c.conname FROM pg_index x JOIN pg_constraint c ON c.conindid = x.indexrelid WHERE x.indrelid = 'cat_items'::regclass;
SELECT am.amname FROM pg_class c, pg_am am WHERE c.relam = am.oid AND c.relname = 'cat_items_hnsw';
SELECT 'cat_items'::regclass::text, 'vector'::regtype::text, 'integer'::regtype::text, to_regclass('nope') IS NULL, to_regtype('nope') IS NULL;
SELECT 'no_such_table'::regclass;
SELECT n.nspname, (SELECT count(*) FROM pg_class c WHERE c.relnamespace = n.oid AND c.relname LIKE 'cat_items%' AND c.relkind = 'r') FROM pg_namespace n WHERE n.nspname = 'public';
SELECT extname FROM pg_extension WHERE extname = 'vector';
SHOW TRANSACTION ISOLATION LEVEL;
DROP TABLE cat_items;
CREATE TABLE cat_a (id int PRIMARY KEY, v text);
CREATE TABLE cat_b (id int PRIMARY KEY, a_id int, w text);
INSERT INTO cat_a VALUES (1, 'x'), (2, 'y'), (3, 'z');
INSERT INTO cat_b VALUES (10, 1, 'p'), (11, 1, 'q'), (12, 2, 'r');
SELECT a.id, a.v, b.w FROM cat_a a LEFT JOIN cat_b b ON b.a_id = a.id ORDER BY a.id, b.w;
SELECT a.v, b.w FROM cat_a a, cat_b b WHERE a.id = b.a_id ORDER BY b.id;
SELECT a.v, b.w FROM cat_a a INNER JOIN cat_b b ON a.id = b.a_id AND b.w <> 'q' ORDER BY b.id;
SELECT count(*) FROM cat_a CROSS JOIN cat_b;
SELECT a.v, count(b.id) FROM cat_a a LEFT JOIN cat_b b ON b.a_id = a.id GROUP BY a.v ORDER BY a.v;
SELECT * FROM cat_a a JOIN cat_b b ON b.a_id = a.id ORDER BY b.id;
SELECT b.* FROM cat_a a JOIN cat_b b ON b.a_id = a.id WHERE a.v = 'x' ORDER BY b.id;
SELECT v FROM cat_a WHERE id = (SELECT a_id FROM cat_b WHERE id = 12);
SELECT v, (SELECT count(*) FROM cat_b WHERE cat_b.a_id = cat_a.id) AS n FROM cat_a ORDER BY id;
SELECT v FROM cat_a WHERE EXISTS (SELECT 1 FROM cat_b WHERE cat_b.a_id = cat_a.id) ORDER BY v;
SELECT v FROM cat_a WHERE id NOT IN (SELECT a_id FROM cat_b) ORDER BY v;
SELECT v FROM cat_a WHERE id = ANY (ARRAY[1, 3]) ORDER BY v;
SELECT v FROM cat_a WHERE id = ANY ('{2,3}') ORDER BY v;
SELECT v, CASE WHEN id = 1 THEN 'one' WHEN id = 2 THEN 'two' ELSE 'many' END FROM cat_a ORDER BY id;
SELECT id FROM cat_a WHERE id = (SELECT id FROM cat_b);
SELECT (SELECT w FROM cat_b WHERE id = 99) IS NULL;
DROP TABLE cat_a;
DROP TABLE cat_b;
