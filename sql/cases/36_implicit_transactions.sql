-- A simple Query holding several statements runs them in one implicit
-- transaction: an error undoes the statements before it (rows, DDL and
-- SET alike); COMMIT or ROLLBACK inside end it with a warning; BEGIN
-- makes it an explicit block; savepoints and commands that refuse blocks
-- are errors.
CREATE TABLE imp_t (a int PRIMARY KEY);
INSERT INTO imp_t VALUES (1); SET work_mem = '1MB'; SELECT 1/0;
SELECT count(*) FROM imp_t;
SHOW work_mem;
INSERT INTO imp_t VALUES (2); INSERT INTO imp_t VALUES (3);
SELECT array_agg(a ORDER BY a) FROM imp_t;
INSERT INTO imp_t VALUES (4); INSERT INTO imp_t VALUES (4);
INSERT INTO imp_t VALUES (5); COMMIT; INSERT INTO imp_t VALUES (6); SELECT 1/0;
INSERT INTO imp_t VALUES (7); ROLLBACK;
SELECT array_agg(a ORDER BY a) FROM imp_t;
INSERT INTO imp_t VALUES (8); BEGIN; INSERT INTO imp_t VALUES (9);
SELECT array_agg(a ORDER BY a) FROM imp_t;
ROLLBACK;
BEGIN; INSERT INTO imp_t VALUES (10); COMMIT; INSERT INTO imp_t VALUES (10);
SELECT 1; BEGIN; SELECT 1/0;
ROLLBACK;
BEGIN;
INSERT INTO imp_t VALUES (11); SELECT 1/0;
ROLLBACK;
SELECT array_agg(a ORDER BY a) FROM imp_t;
SAVEPOINT s; SELECT 1;
INSERT INTO imp_t VALUES (12); COMMIT; SAVEPOINT s;
SET LOCAL work_mem = '2MB'; SHOW work_mem;
SHOW work_mem;
SET work_mem = '3MB'; COMMIT; SELECT 1/0;
SHOW work_mem;
RESET work_mem;
CREATE TABLE imp_u (b int); INSERT INTO imp_u VALUES (1); SELECT 1/0;
SELECT * FROM imp_u;
CREATE TABLE imp_u (b int); INSERT INTO imp_u VALUES (1), (2); SELECT count(*) FROM imp_u;
TRUNCATE imp_u; SELECT 1/0;
DROP TABLE imp_u; SELECT 1/0;
SELECT count(*) FROM imp_u;
CREATE INDEX CONCURRENTLY ON imp_t (a); SELECT 1;
DISCARD ALL; SELECT 1;
BEGIN;
CREATE INDEX CONCURRENTLY ON imp_t (a);
ROLLBACK;
SELECT now() = statement_timestamp() AS same_now; SELECT pg_sleep(0.01); SELECT now() < statement_timestamp() AS later;
SET statement_timeout = '50ms'; INSERT INTO imp_t VALUES (13); SELECT pg_sleep(2);
SHOW statement_timeout;
SELECT array_agg(a ORDER BY a) FROM imp_t;
DROP TABLE imp_t, imp_u;
