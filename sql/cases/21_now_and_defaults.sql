-- now(), current_timestamp and transaction_timestamp() are the
-- transaction's start (the block's inside one, so two inserts of a block
-- get one DEFAULT now()), statement_timestamp() the statement's,
-- clock_timestamp() the clock's; current_date the transaction's day.
-- The values differ between the servers: only comparisons are shown.
SELECT now() = current_timestamp AS a, now() = transaction_timestamp() AS b, pg_typeof(now())::text AS c, now() <= clock_timestamp() AS d, now() <= statement_timestamp() AS e, now() > '2020-01-01 00:00:00+00'::timestamptz AS f, pg_typeof(current_date)::text AS g, current_date > '2020-01-01'::date AS h;
CREATE TABLE ts_t (id int PRIMARY KEY, at timestamptz DEFAULT now(), d date DEFAULT current_date);
INSERT INTO ts_t (id) VALUES (1);
SELECT id, at IS NOT NULL AS has_at, at <= clock_timestamp() AS past, d = current_date AS today FROM ts_t;
BEGIN;
INSERT INTO ts_t (id) VALUES (2);
SELECT pg_sleep(0.02);
INSERT INTO ts_t (id) VALUES (3);
SELECT count(DISTINCT at) AS one_time, bool_and(at = now()) AS block_start FROM ts_t WHERE id IN (2, 3);
SELECT clock_timestamp() > now() AS clock_moves;
COMMIT;
INSERT INTO ts_t (id) VALUES (4);
SELECT pg_sleep(0.02);
INSERT INTO ts_t (id) VALUES (5);
SELECT count(DISTINCT at) AS two_times FROM ts_t WHERE id IN (4, 5);
DROP TABLE ts_t;
