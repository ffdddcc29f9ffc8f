-- Sequences as applications and ORMs use them: CREATE SEQUENCE with its
-- options, nextval/currval/setval/lastval as ordinary functions, a
-- sequence read as a relation, serial columns' sequences (Django's and
-- SQLAlchemy's reset statements), the catalog (pg_class relkind 'S',
-- pg_sequence, pg_sequences, information_schema.sequences, pg_depend as
-- psql's \d reads it) and PostgreSQL's errors.
CREATE SEQUENCE seq_plain;
SELECT last_value, log_cnt, is_called FROM seq_plain;
SELECT nextval('seq_plain');
SELECT nextval('seq_plain'), currval('seq_plain');
SELECT last_value, is_called FROM seq_plain;
SELECT currval('seq_plain'), lastval();
SELECT setval('seq_plain', 100);
SELECT nextval('seq_plain');
SELECT setval('seq_plain', 7, false);
SELECT nextval('seq_plain');
SELECT nextval('public.seq_plain'::regclass);
SELECT nextval('seq_plain'::regclass) > 0 AS positive;
SELECT * FROM seq_plain;
CREATE SEQUENCE IF NOT EXISTS seq_plain;
CREATE SEQUENCE seq_plain;
CREATE SEQUENCE seq_small AS smallint INCREMENT BY 2 MINVALUE 1 MAXVALUE 5 START WITH 1;
SELECT nextval('seq_small');
SELECT nextval('seq_small');
SELECT nextval('seq_small');
SELECT nextval('seq_small');
CREATE SEQUENCE seq_cycle INCREMENT 1 MINVALUE 1 MAXVALUE 2 CYCLE;
SELECT nextval('seq_cycle');
SELECT nextval('seq_cycle');
SELECT nextval('seq_cycle');
CREATE SEQUENCE seq_down INCREMENT BY -1;
SELECT nextval('seq_down');
SELECT nextval('seq_down');
CREATE SEQUENCE seq_start START 42 CACHE 5;
CREATE SEQUENCE seq_any_order START WITH 10 INCREMENT BY 5 NO CYCLE MINVALUE 10 AS integer;
SELECT nextval('seq_any_order'), nextval('seq_any_order');
DROP SEQUENCE seq_any_order;
SELECT nextval('seq_start');
CREATE SEQUENCE seq_bad INCREMENT 0;
CREATE SEQUENCE seq_bad MINVALUE 10 MAXVALUE 5;
CREATE SEQUENCE seq_bad START 0;
CREATE SEQUENCE seq_bad AS smallint MAXVALUE 100000;
CREATE SEQUENCE seq_bad AS text;
CREATE SEQUENCE seq_bad CACHE 0;
SELECT setval('seq_small', 0);
SELECT setval('seq_small', 6);
SELECT currval('seq_start');
SELECT currval('seq_cycle');
SELECT nextval('seq_missing');
SELECT nextval(NULL);
SELECT setval('seq_plain', NULL);
SELECT seqtypid::regtype::text AS type, seqstart, seqincrement, seqmax, seqmin, seqcache, seqcycle FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid WHERE c.relname LIKE 'seq\_%' ORDER BY c.relname;
SELECT sequencename, data_type::text AS data_type, start_value, min_value, max_value, increment_by, cycle, cache_size, last_value FROM pg_sequences WHERE sequencename LIKE 'seq\_%' ORDER BY sequencename;
SELECT sequence_name, data_type, numeric_precision, numeric_precision_radix, numeric_scale, start_value, minimum_value, maximum_value, increment, cycle_option FROM information_schema.sequences WHERE sequence_name LIKE 'seq\_%' ORDER BY sequence_name;
SELECT c.relname, c.relkind, c.relnatts FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'S' AND n.nspname = 'public' AND c.relname LIKE 'seq\_%' ORDER BY c.relname;
SELECT pg_catalog.pg_class.relname FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace WHERE pg_catalog.pg_class.relkind = ANY (ARRAY['S']) AND pg_catalog.pg_namespace.nspname = 'public' AND relname LIKE 'seq\_%' ORDER BY relname;
SELECT 'seq_plain'::regclass::text AS name;
-- A serial column's sequence.
CREATE TABLE seq_items (id serial PRIMARY KEY, name text);
CREATE TABLE seq_big (id bigserial PRIMARY KEY, note text);
SELECT pg_get_serial_sequence('seq_items', 'id'), pg_get_serial_sequence('"seq_items"', 'id'), pg_get_serial_sequence('seq_items', 'name');
SELECT last_value, is_called FROM seq_items_id_seq;
INSERT INTO seq_items (name) VALUES ('a'), ('b') RETURNING id;
SELECT currval('seq_items_id_seq'), lastval();
SELECT last_value, is_called FROM seq_items_id_seq;
SELECT nextval('seq_items_id_seq');
INSERT INTO seq_items (name) VALUES ('c') RETURNING id;
INSERT INTO seq_items (id, name) VALUES (50, 'explicit');
SELECT setval(pg_get_serial_sequence('"seq_items"','id'), coalesce(max("id"), 1), max("id") IS NOT null) FROM "seq_items";
INSERT INTO seq_items (name) VALUES ('after reset') RETURNING id;
SELECT setval(pg_get_serial_sequence('"seq_big"','id'), coalesce(max("id"), 1), max("id") IS NOT null) FROM "seq_big";
INSERT INTO seq_big (note) VALUES ('first') RETURNING id;
SELECT nextval('seq_items');
SELECT seqtypid::regtype::text AS type, seqstart, seqmax FROM pg_sequence WHERE seqrelid = 'seq_items_id_seq'::regclass;
SELECT sequencename, data_type::text AS data_type, max_value, last_value FROM pg_sequences WHERE sequencename IN ('seq_items_id_seq', 'seq_big_id_seq') ORDER BY sequencename;
SELECT d.deptype, a.attname, t.relname FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid WHERE d.objid = 'seq_items_id_seq'::regclass AND d.classid = 'pg_catalog.pg_class'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype IN ('a', 'i');
-- What DROP does.
DROP TABLE seq_plain;
DROP SEQUENCE seq_items;
DROP SEQUENCE seq_items_id_seq;
DROP SEQUENCE seq_nothing;
DROP SEQUENCE IF EXISTS seq_nothing;
DROP SEQUENCE seq_cycle, seq_down;
SELECT nextval('seq_cycle');
DROP TABLE seq_items;
SELECT nextval('seq_items_id_seq');
SELECT count(*) FROM pg_class WHERE relname = 'seq_items_id_seq';
SELECT lastval();
DROP SEQUENCE seq_plain, seq_small, seq_start;
DROP TABLE seq_big;
-- setval moves currval but not lastval; a dropped sequence's lastval.
CREATE SEQUENCE seq_last;
CREATE SEQUENCE seq_other;
SELECT nextval('seq_last');
SELECT setval('seq_other', 9);
SELECT lastval(), currval('seq_other');
DROP SEQUENCE seq_last;
SELECT lastval();
DROP SEQUENCE seq_other;
