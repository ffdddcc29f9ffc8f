-- interval input and output, date/time arithmetic, date_trunc, EXTRACT /
-- date_part, to_char, age, to_timestamp and justify_*: the filters and
-- buckets dashboards and applications write (`created_at > now() -
-- interval '7 days'`, `date_trunc('day', created_at)`). EXTRACT is
-- numeric in PostgreSQL and a double here: its cases cast it.
SELECT interval '1 day' AS a, interval '2 hours 30 minutes' AS b, '90 minutes'::interval AS c, '1 year 2 mons -3 days 04:05:06.7'::interval AS d, interval '-1 day' AS e, '3600'::interval AS f, '1 day 3600'::interval AS g;
SELECT '-1 day 02:00'::interval::text AS a, '1day'::interval::text AS b, '2 hours ago'::interval::text AS c, '-2:30'::interval::text AS d, '1:2:3.5'::interval::text AS e, '1.5 months'::interval::text AS f, '1.5 weeks'::interval::text AS g, 'P1DT2H'::interval::text AS h, '@ 1 day ago'::interval::text AS i, '0'::interval::text AS j;
SELECT interval '2' hour AS a, interval '3' day AS b, pg_typeof(interval '1 day') AS t;
SELECT 'abc'::interval;
SELECT '1 foo'::interval;
SELECT '99999999999 years'::interval;
SELECT interval '1 day' + interval '25 hours 3 min' AS a, interval '1 month' * 1.5 AS b, interval '1 day' / 3 AS c, 2 * interval '1 hour' AS d, -interval '1 day' AS e, interval '1 day' - '2 hours' AS f;
SELECT interval '1 day' / 0;
SELECT timestamptz '2024-01-01' + interval '2147483647 days';
SELECT interval '2147483647 days' + interval '1 day';
SELECT date '2024-01-01' + 2147483647;
SELECT interval '1 mon' = interval '30 days' AS a, interval '25 hours' > interval '1 day' AS b, interval '1 hour' < '2 hours' AS c;
SELECT timestamptz '2024-01-31 10:00+00' + interval '1 month' AS a, timestamptz '2024-03-31 00:00+00' - interval '1 month' AS b, timestamptz '2024-01-01 00:00+00' + interval '1 day 2 hours' AS c, interval '1 hour' + timestamptz '2024-01-01 00:00+00' AS d, timestamptz '2024-01-01 00:00+00' + '36 hours' AS e;
SELECT timestamptz '2024-01-02 03:00+00' - timestamptz '2024-01-01 00:00+00' AS a, timestamptz '2024-01-01' - timestamptz '2024-01-03 01:00' AS b, pg_typeof(now() - now()) AS t;
SELECT date '2024-02-10' - date '2024-01-01' AS a, date '2024-02-28' + 2 AS b, date '2024-01-01' - 1 AS c, date '2024-01-31' + interval '1 month' AS d, pg_typeof(date '2024-01-01' + interval '1 day') AS t;
SELECT '2024-01-15 10:30:00'::timestamp AS a, timestamp '2024-01-15 10:30:00.25' + interval '1 hour' AS b, '2024-01-15 10:30'::timestamp::date AS c, pg_typeof('2024-01-15'::timestamp) AS t;
SELECT now() - interval '7 days' < now() AS a, now() > now() - interval '1 hour' AS b, now() + interval '1 day' > clock_timestamp() AS c, current_date - interval '1 day' < now() AS d;
SELECT date_trunc('day', timestamptz '2024-03-05 14:07:09.5+00') AS d, date_trunc('hour', timestamptz '2024-03-05 14:07:09+00') AS h, date_trunc('month', timestamptz '2024-03-05 14:07:09+00') AS m, date_trunc('week', timestamptz '2024-03-07 14:07:09+00') AS w, date_trunc('quarter', timestamptz '2024-05-05+00') AS q, date_trunc('year', timestamptz '2024-05-05+00') AS y, date_trunc('minute', timestamptz '2024-03-05 14:07:09+00') AS mi;
SELECT date_trunc('decade', timestamptz '2024-05-05+00') AS a, date_trunc('century', timestamptz '2024-05-05+00') AS b, date_trunc('millennium', timestamptz '2024-05-05+00') AS c, date_trunc('day', timestamp '2024-03-05 14:07') AS d, date_trunc('month', date '2024-03-05') AS e, date_trunc('hour', interval '1 day 02:30:10') AS f, date_trunc('DAY', timestamptz '2024-03-05 14:07+00') AS g;
SELECT date_trunc('foo', now());
SELECT date_trunc('week', interval '10 days');
SELECT EXTRACT(year FROM timestamptz '2024-03-05 14:07:09.5+00')::int AS y, EXTRACT(month FROM timestamptz '2024-03-05 14:07:09.5+00')::int AS m, EXTRACT(day FROM date '2024-03-05')::int AS d, EXTRACT(hour FROM timestamp '2024-03-05 14:07:09')::int AS h, EXTRACT(dow FROM date '2024-03-05')::int AS dow, EXTRACT(isodow FROM date '2024-03-10')::int AS isodow, EXTRACT(doy FROM date '2024-03-05')::int AS doy, EXTRACT(week FROM date '2024-01-01')::int AS week, EXTRACT(quarter FROM date '2024-05-05')::int AS q;
SELECT EXTRACT(epoch FROM timestamptz '2024-03-05 14:07:09+00')::bigint AS e, EXTRACT(epoch FROM interval '1 day 2 hours')::int AS ie, EXTRACT(minute FROM interval '2 hours 30 minutes')::int AS im, EXTRACT(century FROM date '2024-01-01')::int AS c;
SELECT date_part('year', timestamptz '2024-03-05 14:07:09.5+00') AS y, date_part('second', timestamptz '2024-03-05 14:07:09.5+00') AS s, date_part('epoch', timestamptz '2024-03-05 14:07:09.5+00') AS e, date_part('hour', interval '26 hours') AS ih, date_part('day', date '2024-03-05') AS d, date_part('isoyear', date '2021-01-03') AS iy, date_part('milliseconds', timestamp '2024-01-01 00:00:09.123') AS ms;
SELECT EXTRACT(hour FROM date '2024-01-01');
SELECT EXTRACT(foo FROM now());
SELECT date_part('foo', now());
SELECT to_char(timestamptz '2024-03-05 14:07:09.123456+00', 'YYYY-MM-DD HH24:MI:SS') AS a, to_char(timestamptz '2024-03-05 14:07:09+00', 'FMMonth FMDD, YYYY') AS b, to_char(timestamptz '2024-03-05 14:07:09.123456+00', 'Mon dy HH12 am MS US') AS c, to_char(timestamptz '2024-03-05 00:07:09+00', 'Day|DAY|HH12 PM') AS d, to_char(date '2024-03-05', '"Q"Q IW DDD YY') AS e, to_char(timestamp '2024-12-31 23:59:59', 'YYYY/MM/DD') AS f;
SELECT age(timestamptz '2024-03-01', timestamptz '2023-01-31 10:00') AS a, age(timestamptz '2023-01-31', timestamptz '2024-03-01 10:00') AS b, age(timestamp '2024-03-31', timestamp '2024-02-29') AS c, age(now()) < interval '1 day' AS d, pg_typeof(age(now())) AS t;
SELECT to_timestamp(1700000000) AS a, to_timestamp(1700000000.5) AS b, justify_hours(interval '50 hours') AS c, justify_days(interval '65 days') AS d, justify_interval(interval '1 mon -1 hour') AS e;
CREATE TABLE events (id int PRIMARY KEY, kind text, at timestamptz NOT NULL, d date);
INSERT INTO events VALUES (1, 'a', '2024-03-05 10:00+00', '2024-03-05'), (2, 'b', '2024-03-05 23:30+00', '2024-03-05'), (3, 'a', '2024-03-07 08:15+00', '2024-03-07'), (4, 'a', '2024-04-01 00:00+00', '2024-04-01'), (5, 'b', now() - interval '10 minutes', current_date);
SELECT id FROM events WHERE at > now() - interval '1 hour' ORDER BY id;
SELECT id FROM events WHERE at >= timestamptz '2024-03-05 00:00+00' AND at < timestamptz '2024-03-05 00:00+00' + interval '1 day' ORDER BY id;
SELECT date_trunc('day', at) AS day, count(*) AS n FROM events WHERE at < '2024-05-01' GROUP BY date_trunc('day', at) ORDER BY day;
SELECT to_char(at, 'YYYY-MM') AS month, count(*) AS n FROM events WHERE id < 5 GROUP BY 1 ORDER BY 1;
SELECT id, at - lag_at AS gap FROM (SELECT id, at, (SELECT max(at) FROM events e2 WHERE e2.at < events.at) AS lag_at FROM events WHERE id < 5) s ORDER BY id;
SELECT id, d + 7 AS week_later, d - date '2024-03-01' AS since FROM events WHERE id < 5 ORDER BY id;
SELECT id FROM events WHERE at BETWEEN '2024-03-05' AND '2024-03-08' ORDER BY at DESC;
SELECT max(at) - min(at) AS span FROM events WHERE id < 5;
DROP TABLE events;
