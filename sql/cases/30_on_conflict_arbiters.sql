-- INSERT … ON CONFLICT: only the arbiter's conflicts are skipped or updated
-- (another constraint's stays an error), rows the same transaction wrote are
-- found, one statement may not update a row twice, and the target is checked.
CREATE TABLE oc (id int PRIMARY KEY, u int UNIQUE, v text);
INSERT INTO oc VALUES (1, 10, 'a');
INSERT INTO oc VALUES (2, 10, 'b') ON CONFLICT (id) DO NOTHING;
INSERT INTO oc VALUES (1, 20, 'b') ON CONFLICT (id) DO NOTHING;
INSERT INTO oc VALUES (3, 30, 'c'), (3, 31, 'd') ON CONFLICT (id) DO NOTHING;
INSERT INTO oc VALUES (4, 40, 'c'), (4, 41, 'd') ON CONFLICT (id) DO UPDATE SET v = excluded.v;
BEGIN;
INSERT INTO oc VALUES (5, 50, 'x');
INSERT INTO oc VALUES (5, 51, 'y') ON CONFLICT (id) DO UPDATE SET v = excluded.v RETURNING *;
INSERT INTO oc VALUES (5, 52, 'z') ON CONFLICT (id) DO NOTHING RETURNING *;
COMMIT;
INSERT INTO oc VALUES (6, 10, 'q') ON CONFLICT (u) DO UPDATE SET v = 'upd' RETURNING *;
INSERT INTO oc VALUES (7, 10, 'q') ON CONFLICT ON CONSTRAINT oc_u_key DO NOTHING;
INSERT INTO oc VALUES (7, 10, 'q') ON CONFLICT DO NOTHING;
INSERT INTO oc VALUES (8, 80, 'q') ON CONFLICT (v) DO NOTHING;
INSERT INTO oc VALUES (8, 80, 'q') ON CONFLICT DO UPDATE SET v = 'x';
INSERT INTO oc VALUES (8, 80, 'q') ON CONFLICT ON CONSTRAINT nope DO NOTHING;
INSERT INTO oc VALUES (9, 90, 'q') ON CONFLICT (u, id) DO NOTHING;
BEGIN;
UPDATE oc SET id = 11 WHERE id = 3;
INSERT INTO oc VALUES (11, 33, 'r') ON CONFLICT (id) DO UPDATE SET v = oc.v || excluded.v RETURNING *;
INSERT INTO oc VALUES (3, 35, 's') ON CONFLICT (id) DO UPDATE SET v = 'old3' RETURNING *;
DELETE FROM oc WHERE id = 5;
INSERT INTO oc VALUES (5, 55, 't') ON CONFLICT (id) DO UPDATE SET v = 'no' RETURNING *;
INSERT INTO oc VALUES (12, 1, 'a'), (13, 1, 'b') ON CONFLICT (u) DO UPDATE SET v = 'twice';
ROLLBACK;
BEGIN;
INSERT INTO oc VALUES (20, 200, 'a');
UPDATE oc SET v = 'b' WHERE id = 20;
INSERT INTO oc VALUES (21, 200, 'c') ON CONFLICT (u) DO UPDATE SET v = oc.v || excluded.v WHERE oc.id = 20 RETURNING *;
INSERT INTO oc VALUES (22, 200, 'c') ON CONFLICT (u) DO UPDATE SET v = 'z' WHERE oc.id = 99 RETURNING *;
COMMIT;
SELECT * FROM oc ORDER BY id;
DROP TABLE oc;
