-- jsonb by path: #> and #>> (json and jsonb), jsonb_set, jsonb_insert,
-- jsonb_strip_nulls — how document stores read and edit nested metadata.
CREATE TABLE orders (id int PRIMARY KEY, status text, amount real, meta jsonb);
INSERT INTO orders VALUES (1, 'paid', 10, '{"user": {"id": 7, "name": "ann"}, "tags": ["a", "b"], "n": null}'), (2, 'open', 5.5, '{"user": {"id": 8}, "tags": []}'), (3, 'paid', 2, '{"user": {"id": 7}, "tags": ["b"]}'), (4, 'void', NULL, NULL);
SELECT id, meta #> '{user,id}' AS uid, meta #>> '{user,name}' AS name, meta #> '{tags,0}' AS first_tag, meta -> 'user' ->> 'id' AS uid_text FROM orders ORDER BY id;
SELECT id FROM orders WHERE meta @> '{"user": {"id": 7}}' ORDER BY id;
SELECT id FROM orders WHERE meta -> 'tags' ? 'b' ORDER BY id;
SELECT id FROM orders WHERE (meta #>> '{user,id}')::int = 8;
SELECT jsonb_set('{"a": 1, "b": {"c": 2}}', '{b,c}', '3') AS a, jsonb_set('{"a": 1}', '{d}', '"x"') AS b, jsonb_set('{"a": 1}', '{d}', '"x"', false) AS c, jsonb_set('[1, 2, 3]', '{1}', '9') AS d, jsonb_set('[1, 2]', '{-1}', '9') AS e, jsonb_set('[1, 2]', '{5}', '9') AS f, jsonb_set('{"a": 1}', '{x,y}', '1') AS g;
SELECT jsonb_insert('{"a": [1, 2]}', '{a,1}', '7') AS a, jsonb_insert('{"a": [1, 2]}', '{a,1}', '7', true) AS b, jsonb_insert('{"a": 1}', '{b}', '2') AS c;
SELECT jsonb_set('{"a": 1}', '{a}', NULL) AS a, jsonb_set(NULL, '{a}', '1') AS b;
SELECT jsonb_strip_nulls('{"a": null, "b": {"c": null, "d": 1}}') AS a;
UPDATE orders SET meta = jsonb_set(meta, '{user,name}', '"bob"') WHERE id = 2 RETURNING meta;
UPDATE orders SET meta = jsonb_set(coalesce(meta, '{}'), '{status}', to_jsonb(status)) WHERE id = 4 RETURNING meta;
SELECT jsonb_set('{"a": 1}', '{a}', '1', 'x');
SELECT jsonb_set('1', '{a}', '1');
SELECT jsonb_set('{"a": [1]}', '{a,x}', '1');
SELECT '{"a": {"b": [1, {"c": "x"}]}}'::json #> '{a,b,1}' AS a, '{"a": {"b": [1, {"c": "x"}]}}'::json #>> '{a,b,1,c}' AS b, '{"a": 1}'::jsonb #> '{}' AS c, '[1, [2, 3]]'::jsonb #>> '{1,-1}' AS d, '{"a": 1}'::jsonb #> '{a,b}' AS e, '{"a": 1}'::jsonb #> ARRAY['a'] AS f;
SELECT jsonb_insert('[1, 2]', '{-9}', '0') AS a, jsonb_insert('[1, 2]', '{9}', '3', true) AS b, jsonb_set('{"a": [1, 2]}', '{a,-9}', '0') AS c;
SELECT jsonb_insert('{"a": 1}', '{a}', '2');
SELECT to_json(timestamptz '2024-01-15 10:30:00.5+00') AS a, to_jsonb(timestamp '2024-01-15 10:30:00') AS b, jsonb_build_object('at', date '2024-01-15', 'every', interval '1 day') AS c;
DROP TABLE orders;
