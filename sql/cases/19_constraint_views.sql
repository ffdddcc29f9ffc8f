-- information_schema's constraint views (table_constraints,
-- key_column_usage, referential_constraints, constraint_column_usage,
-- check_constraints) over primary keys, UNIQUE, FOREIGN KEYs with every
-- kept action and NOT NULL columns (PostgreSQL 18 shows those as CHECK);
-- ON UPDATE / ON DELETE RESTRICT kept as RESTRICT in pg_constraint and
-- pg_get_constraintdef, and a RESTRICT delete or key update refused
-- with 23001. (The *_catalog columns are left out: the database names
-- differ between the two servers.)
CREATE TABLE cv_parent (id int PRIMARY KEY, code text UNIQUE, a int, b int, "Label Text" text NOT NULL, UNIQUE (a, b));
CREATE TABLE cv_child (id bigint PRIMARY KEY, pid int REFERENCES cv_parent ON DELETE RESTRICT ON UPDATE RESTRICT, pcode text, x int, y int, note text NOT NULL, CONSTRAINT cv_code_fk FOREIGN KEY (pcode) REFERENCES cv_parent (code) ON DELETE CASCADE, FOREIGN KEY (y, x) REFERENCES cv_parent (b, a) ON DELETE SET NULL);
CREATE TABLE cv_plain (pid int REFERENCES cv_parent (id));
SELECT constraint_schema, constraint_name, table_schema, table_name, constraint_type, is_deferrable, initially_deferred, enforced, nulls_distinct FROM information_schema.table_constraints WHERE table_schema = 'public' AND table_name LIKE 'cv%' ORDER BY table_name, constraint_name;
SELECT constraint_schema, constraint_name, table_schema, table_name, column_name, ordinal_position, position_in_unique_constraint FROM information_schema.key_column_usage WHERE table_name LIKE 'cv%' ORDER BY table_name, constraint_name, ordinal_position;
SELECT constraint_schema, constraint_name, unique_constraint_schema, unique_constraint_name, match_option, update_rule, delete_rule FROM information_schema.referential_constraints WHERE constraint_name IN ('cv_child_pid_fkey', 'cv_code_fk', 'cv_child_y_x_fkey', 'cv_plain_pid_fkey') ORDER BY constraint_name;
SELECT table_schema, table_name, column_name, constraint_schema, constraint_name FROM information_schema.constraint_column_usage WHERE table_name LIKE 'cv%' ORDER BY table_name, column_name, constraint_name;
SELECT constraint_schema, constraint_name, check_clause FROM information_schema.check_constraints WHERE constraint_name LIKE 'cv%' ORDER BY constraint_name;
SELECT tc.table_name, kcu.column_name, ccu.table_name AS foreign_table, ccu.column_name AS foreign_column, rc.update_rule, rc.delete_rule FROM information_schema.table_constraints tc JOIN information_schema.key_column_usage kcu ON tc.constraint_name = kcu.constraint_name AND tc.table_schema = kcu.table_schema JOIN information_schema.constraint_column_usage ccu ON ccu.constraint_name = tc.constraint_name AND ccu.table_schema = tc.table_schema JOIN information_schema.referential_constraints rc ON rc.constraint_name = tc.constraint_name WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_name = 'cv_child' AND kcu.ordinal_position = 1 ORDER BY 1, 2, 4;
SELECT conname, contype, confupdtype, confdeltype, confmatchtype, conparentid, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid IN ('cv_child'::regclass, 'cv_plain'::regclass) AND contype = 'f' ORDER BY conname;
INSERT INTO cv_parent VALUES (1, 'one', 1, 2, 'first'), (2, 'two', 3, 4, 'second');
INSERT INTO cv_child VALUES (10, 1, 'two', 3, 4, 'n');
DELETE FROM cv_parent WHERE id = 1;
UPDATE cv_parent SET id = 5 WHERE id = 1;
UPDATE cv_parent SET id = id - 1 WHERE id IN (1, 2);
SELECT id, pid, pcode FROM cv_child ORDER BY id;
DROP TABLE cv_plain;
DROP TABLE cv_child;
DROP TABLE cv_parent;
