-- The collecting aggregates beside array_agg: string_agg(text,
-- separator) and json_agg / jsonb_agg, with ORDER BY inside, NULLs
-- (string_agg skips them, the JSON ones keep them as null), empty
-- groups (NULL) and the JSON texts of numbers, strings, booleans,
-- json / jsonb values and arrays.
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
DROP TABLE ja;
