-- DDL inside a transaction block sees the block's own DROPs: a table
-- dropped and created again under the same name (with an index named as
-- the old one's), committed or rolled back — what ORMs' schema resets do.
CREATE TABLE redo_t (id int);
CREATE INDEX redo_i ON redo_t (id);
INSERT INTO redo_t VALUES (7);
BEGIN;
DROP TABLE redo_t;
CREATE TABLE redo_t (id int PRIMARY KEY, x text);
CREATE INDEX redo_i ON redo_t (x);
ROLLBACK;
SELECT * FROM redo_t;
BEGIN;
DROP TABLE IF EXISTS redo_t;
CREATE TABLE redo_t (id int PRIMARY KEY, x text);
CREATE INDEX redo_i ON redo_t (x);
CREATE INDEX redo_i ON redo_t (id);
ROLLBACK;
BEGIN;
DROP TABLE IF EXISTS redo_t;
CREATE TABLE redo_t (id int PRIMARY KEY, x text);
CREATE INDEX redo_i ON redo_t (x);
INSERT INTO redo_t VALUES (1, 'a');
SELECT * FROM redo_t;
COMMIT;
SELECT * FROM redo_t;
SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = 'redo_t'::regclass ORDER BY 1;
DROP TABLE redo_t;
