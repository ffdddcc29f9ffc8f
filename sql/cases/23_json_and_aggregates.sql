-- The collecting aggregates beside array_agg: string_agg(text,
-- separator) and json_agg / jsonb_agg, with ORDER BY inside, NULLs
-- (string_agg skips them, the JSON ones keep them as null), empty
-- groups (NULL) and the JSON texts of numbers, strings, booleans,
-- json / jsonb values and arrays. Then the functions that build and
-- inspect JSON: to_json / to_jsonb, json(b)_build_object / _array,
-- jsonb_typeof, jsonb_array_length.
CREATE TABLE ja (id int PRIMARY KEY, grp int, name text, score float8, ok bool, tags int[], doc jsonb, raw json);
INSERT INTO ja VALUES (1, 1, 'b', 1.5, true, '{1,2}', '{"k": 1}', '{"z":1,  "a":2}'), (2, 1, 'a', NULL, false, NULL, NULL, NULL), (3, 2, NULL, -2, NULL, '{}', '[1, "x"]', '[3]'), (4, 2, 'c"q', 4, true, '{3}', '"s"', '"t"');
SELECT string_agg(name, ', ' ORDER BY id) AS names, string_agg(name, '' ORDER BY name DESC) AS desc_names FROM ja;
SELECT grp, string_agg(name, '-' ORDER BY name) FROM ja GROUP BY grp ORDER BY grp;
SELECT string_agg(name, NULL ORDER BY id), string_agg('', ',' ORDER BY id) FROM ja;
SELECT jsonb_agg(id ORDER BY id DESC) AS ids, json_agg(name ORDER BY id) AS names, jsonb_agg(score ORDER BY id) AS scores, json_agg(ok ORDER BY id) AS oks FROM ja;
SELECT jsonb_agg(tags ORDER BY id), json_agg(tags ORDER BY id) FROM ja;
SELECT jsonb_agg(doc ORDER BY id), json_agg(doc ORDER BY id), jsonb_agg(raw ORDER BY id), json_agg(raw ORDER BY id) FROM ja;
SELECT grp, jsonb_agg(name ORDER BY name), json_agg(id ORDER BY id DESC) FROM ja GROUP BY grp ORDER BY grp;
SELECT jsonb_agg(id), json_agg(id), string_agg(name, ',') FROM ja WHERE id > 100;
SELECT pg_typeof(string_agg(name, ',')), pg_typeof(json_agg(id)), pg_typeof(jsonb_agg(id)) FROM ja;
SELECT jsonb_agg(name ORDER BY id) -> 0 AS first, json_agg(name ORDER BY id) ->> 1 AS second FROM ja;
SELECT to_jsonb(id), to_json(name), to_jsonb(score), to_json(ok), to_jsonb(tags), to_json(tags), to_jsonb(doc), to_json(raw), to_jsonb(raw) FROM ja ORDER BY id;
SELECT jsonb_build_object('name', name, 'id', id, 'tags', tags, 'doc', doc) AS b, json_build_object('name', name, 'id', id, 'raw', raw) AS j FROM ja ORDER BY id;
SELECT jsonb_build_object(), json_build_object(), jsonb_build_array(), json_build_array(), jsonb_build_object('b', 1, 'a', 2, 'b', 3), json_build_object('b', 1, 'b', 2), jsonb_build_object(1, true);
SELECT jsonb_build_array(1, 'x', NULL, 2.5::float8, false, ARRAY[1, 2]), json_build_array(1, 'x', NULL, ARRAY['a']), jsonb_build_array(jsonb_build_object('k', 'v'));
SELECT jsonb_typeof(doc), json_typeof(raw), jsonb_array_length(tags_json) FROM (SELECT doc, raw, to_jsonb(tags) AS tags_json FROM ja) s ORDER BY 1, 2, 3;
SELECT jsonb_typeof('{"a": 1}'), jsonb_typeof('[]'), jsonb_typeof('"s"'), jsonb_typeof('1.5'), jsonb_typeof('true'), jsonb_typeof('null'), jsonb_typeof(NULL), jsonb_array_length('[1, [2, 3], {}]'), json_array_length('[]');
SELECT pg_typeof(to_json(1)), pg_typeof(to_jsonb(1)), pg_typeof(jsonb_build_object('a', 1)), pg_typeof(json_build_array()), pg_typeof(jsonb_typeof('1')), pg_typeof(jsonb_array_length('[]'));
SELECT jsonb_build_object('a', 1) -> 'a', jsonb_build_object('a', 'x') ->> 'a';
SELECT jsonb_array_length('{"a": 1}');
SELECT jsonb_array_length('1');
SELECT jsonb_build_object('a');
SELECT jsonb_build_object(NULL, 1);
DROP TABLE ja;
