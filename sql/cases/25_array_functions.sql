-- array_append, array_prepend, array_remove and array_position (NULL
-- elements and NULL arrays as PostgreSQL treats them), also in UPDATE.
SELECT array_append(ARRAY[1, 2], 3) AS a, array_prepend(0, ARRAY[1, 2]) AS b, array_append(ARRAY['x'], 'y') AS c, array_remove(ARRAY[1, 2, 1, NULL], 1) AS d, array_remove(ARRAY[1, NULL, 2], NULL) AS e, array_position(ARRAY['a', 'b', 'c'], 'b') AS f, array_position(ARRAY[1, 2], 5) AS g, array_position(ARRAY[1, NULL], NULL) AS h, array_append(ARRAY[1, 2], NULL) AS i;
CREATE TABLE arr_t (id int PRIMARY KEY, tags text[]);
INSERT INTO arr_t VALUES (1, '{z}'), (2, NULL);
UPDATE arr_t SET tags = array_append(tags, 'w') RETURNING id, tags;
UPDATE arr_t SET tags = array_remove(tags, 'z') WHERE id = 1 RETURNING tags;
SELECT id, array_position(tags, 'w'), pg_typeof(array_append(tags, 'q')) FROM arr_t ORDER BY id;
DROP TABLE arr_t;
