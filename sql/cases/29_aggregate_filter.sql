-- Aggregates with FILTER (WHERE …): dashboards' conditional counts and
-- sums, with GROUP BY, ORDER BY inside the collecting aggregates, NULLs.
CREATE TABLE orders (id int PRIMARY KEY, status text, amount real, meta jsonb);
INSERT INTO orders VALUES (1, 'paid', 10, '{"user": {"id": 7, "name": "ann"}, "tags": ["a", "b"], "n": null}'), (2, 'open', 5.5, '{"user": {"id": 8}, "tags": []}'), (3, 'paid', 2, '{"user": {"id": 7}, "tags": ["b"]}'), (4, 'void', NULL, NULL);
SELECT count(*) FILTER (WHERE status = 'paid') AS paid, count(*) FILTER (WHERE status <> 'paid') AS other, sum(amount) FILTER (WHERE status = 'paid') AS paid_sum, avg(amount) FILTER (WHERE amount > 3) AS big_avg, count(*) AS all_rows FROM orders;
SELECT status, count(*) FILTER (WHERE amount > 3) AS big, max(amount) FILTER (WHERE id > 1) AS m FROM orders GROUP BY status ORDER BY status;
SELECT array_agg(id ORDER BY id) FILTER (WHERE meta ? 'tags') AS tagged, string_agg(status, ',') FILTER (WHERE id < 3) AS s FROM orders;
SELECT count(*) FILTER (WHERE amount IS NULL) AS nulls, sum(amount) FILTER (WHERE false) AS none FROM orders;
SELECT count(*) FILTER (WHERE id) FROM orders;
DROP TABLE orders;
