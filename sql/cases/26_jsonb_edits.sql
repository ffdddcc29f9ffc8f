-- jsonb's || (objects merged, arrays concatenated, others wrapped) and -
-- (a key, an array's strings, an index from either end), also in UPDATE.
SELECT '{"a": 1, "b": 2}'::jsonb || '{"b": 3, "c": 4}' AS merged, '[1, 2]'::jsonb || '[3]'::jsonb AS arrays, '[1]'::jsonb || '{"x": 1}'::jsonb AS appended, '{"x": 1}'::jsonb || '[1]'::jsonb AS prepended, '1'::jsonb || '"s"'::jsonb AS scalars, '{"a": 1}'::jsonb || '2'::jsonb AS wrapped;
SELECT '{"a": 1, "b": 2}'::jsonb - 'a' AS no_a, '["a", "b", "a"]'::jsonb - 'a' AS no_strings, '[1, 2, 3]'::jsonb - 1 AS no_second, '[1, 2, 3]'::jsonb - -1 AS no_last, '[1, 2, 3]'::jsonb - 9 AS unchanged, pg_typeof('{}'::jsonb || '{}') AS t;
CREATE TABLE jb_t (id int PRIMARY KEY, meta jsonb DEFAULT '{}');
INSERT INTO jb_t VALUES (1, '{"a": 1}'), (2, NULL);
UPDATE jb_t SET meta = meta || '{"c": 3}' RETURNING id, meta;
UPDATE jb_t SET meta = meta - 'a' WHERE id = 1 RETURNING meta;
DROP TABLE jb_t;
SELECT '1'::jsonb - 'a';
SELECT '{"a": 1}'::jsonb - 0;
