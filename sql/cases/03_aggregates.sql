-- count / sum / min / max, vector avg and sum, GROUP BY, HAVING.
CREATE TABLE g (id int PRIMARY KEY, grp int, x double precision, e vector(2));
INSERT INTO g VALUES (1, 1, 1.5, '[1,2]'), (2, 1, 2.5, '[3,4]'), (3, 2, NULL, '[5,6]'), (4, 2, 4, NULL), (5, 3, -1, '[0,0]');
SELECT count(*), count(x), sum(x), min(x), max(x), avg(x) FROM g;
SELECT grp, count(*), sum(x), avg(e), sum(e) FROM g GROUP BY grp ORDER BY grp;
SELECT grp, count(*) FROM g GROUP BY grp HAVING count(*) > 1 ORDER BY grp;
SELECT avg(e) FROM g WHERE id > 100;
SELECT count(*) FROM g WHERE id > 100;
DROP TABLE g;
