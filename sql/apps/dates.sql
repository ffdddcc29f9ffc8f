-- Date and time SQL of applications and dashboards, run through the proxy
-- against PostgreSQL (tests/proxy_application_sql.rs): recent rows, rows
-- of a day, buckets per day / month / hour, a KNN search over recent
-- rows. Only deterministic results are shown (now() differs between the
-- servers). `-- refused: words` marks a statement the proxy refuses with
-- 0A000 across shards.

-- # schema
CREATE TABLE docs (id bigint PRIMARY KEY, kind text, created_at timestamptz NOT NULL DEFAULT now(), embedding vector(3));
INSERT INTO docs (id, kind, created_at, embedding) VALUES (1, 'a', '2024-03-05 10:00+00', '[1,0,0]'), (2, 'b', '2024-03-05 23:30+00', '[0,1,0]'), (3, 'a', '2024-03-07 08:15+00', '[0,0,1]'), (4, 'a', '2024-04-01 00:00+00', '[1,1,0]'), (5, 'b', '2024-04-02 13:45:30.5+00', '[1,1,1]');
INSERT INTO docs (id, kind, embedding) VALUES (6, 'a', '[2,2,2]'), (7, 'b', '[0,1,1]');
INSERT INTO docs (id, kind, created_at, embedding) VALUES (8, 'b', now() - interval '3 days', '[1,0,1]'), (9, 'a', now() - interval '2 hours', '[3,3,3]');

-- # recent rows
SELECT id FROM docs WHERE created_at > now() - interval '1 hour' ORDER BY id;
SELECT id FROM docs WHERE created_at >= now() - interval '7 days' ORDER BY id;
SELECT count(*) FROM docs WHERE created_at < now() - '1 day'::interval;
SELECT id FROM docs WHERE created_at > now() - interval '7 days' ORDER BY embedding <-> '[3,3,3]' LIMIT 2;
SELECT id, created_at FROM docs WHERE created_at BETWEEN '2024-03-05' AND '2024-03-08' ORDER BY created_at DESC;
SELECT id FROM docs WHERE created_at >= timestamptz '2024-03-05 00:00+00' AND created_at < timestamptz '2024-03-05 00:00+00' + interval '1 day' ORDER BY id;

-- # buckets
SELECT date_trunc('day', created_at) AS day, count(*) AS n FROM docs WHERE created_at < '2024-05-01' GROUP BY date_trunc('day', created_at) ORDER BY day;
SELECT date_trunc('month', created_at) AS month, count(*) FROM docs WHERE created_at < '2024-05-01' GROUP BY 1 ORDER BY 1;
SELECT to_char(created_at, 'YYYY-MM') AS month, kind, count(*) AS n FROM docs WHERE created_at < '2024-05-01' GROUP BY 1, 2 ORDER BY 1, 2;
SELECT EXTRACT(hour FROM created_at)::int AS hour, count(*) FROM docs WHERE id <= 5 GROUP BY 1 ORDER BY 1;
SELECT date_part('dow', created_at) AS dow, min(id), max(id) FROM docs WHERE id <= 5 GROUP BY 1 ORDER BY 1;
SELECT min(created_at), max(created_at) FROM docs WHERE id <= 5;
SELECT date_trunc('day', created_at) AS day, count(*) FILTER (WHERE kind = 'a') AS a, max(id) FILTER (WHERE kind = 'b') AS b_max, count(*) AS n FROM docs WHERE id <= 5 GROUP BY 1 ORDER BY 1;
SELECT count(*) FILTER (WHERE created_at > now() - interval '1 day') AS today, count(*) AS total FROM docs;
-- refused: expression over an aggregate
SELECT max(created_at) - min(created_at) AS span FROM docs WHERE id <= 5;

-- # values
SELECT id, created_at + interval '1 month' AS next_month, created_at - interval '1 day 2 hours' AS before, to_char(created_at, 'FMMonth FMDD, YYYY HH24:MI') AS shown FROM docs WHERE id <= 5 ORDER BY id;
SELECT id, timestamptz '2024-04-03 00:00+00' - created_at AS ago FROM docs WHERE id <= 5 ORDER BY id;
SELECT id, date_trunc('hour', created_at) AS hour, created_at::date AS day, age(timestamptz '2025-01-01', created_at) AS age FROM docs WHERE id <= 5 ORDER BY id;
SELECT id, timestamptz '2024-04-03 00:00+00' - created_at AS ago FROM docs WHERE id <= 5 ORDER BY ago;
UPDATE docs SET created_at = created_at + interval '1 year' WHERE id = 1 RETURNING id, created_at;
DELETE FROM docs WHERE created_at < timestamptz '2024-03-06' RETURNING id;
DROP TABLE docs;

-- # timestamp without time zone
CREATE TABLE jobs (id bigint PRIMARY KEY, name text, created_at timestamp NOT NULL DEFAULT now(), every interval);
INSERT INTO jobs VALUES (1, 'a', '2024-01-15 10:30:00', '1 day'), (2, 'b', '2024-01-15 10:30:00.123456', '2 hours'), (3, 'c', '2024-02-29 23:59:59', '1 mon'), (4, 'd', '2023-12-31 00:00:00', NULL);
INSERT INTO jobs (id, name) VALUES (5, 'e');
SELECT id, created_at, every FROM jobs WHERE id < 5 ORDER BY created_at;
SELECT id, every FROM jobs ORDER BY every DESC NULLS LAST, id;
SELECT id, every, created_at + every AS next_run FROM jobs WHERE every IS NOT NULL ORDER BY every LIMIT 2;
SELECT name, created_at + every AS next_run FROM jobs WHERE created_at < '2024-02-01' ORDER BY created_at DESC LIMIT 2;
SELECT date_trunc('month', created_at) AS month, count(*) FROM jobs WHERE id < 5 GROUP BY 1 ORDER BY 1;
SELECT count(*) FROM jobs WHERE created_at > now() - interval '1 hour';
DROP TABLE jobs;
