-- jsonb's -> and ->> operators, as LlamaIndex and LangChain filter
-- metadata with them: fields, array elements (negative from the end),
-- missing keys and JSON null as NULL, nested values printed as jsonb.
CREATE TABLE meta_t (id int PRIMARY KEY, metadata_ jsonb, embedding vector(2));
INSERT INTO meta_t VALUES
  (1, '{"kind": "fruit", "price": 3, "tags": ["sweet", "red"], "ref_doc_id": "d1"}', '[1,0]'),
  (2, '{"kind": "fruit", "price": 1, "color": null, "ref_doc_id": "d1"}', '[0.9,0.3]'),
  (3, '{"kind": "vegetable", "price": 2, "nested": {"zz": 1, "a": [1,2]}, "ref_doc_id": "d2"}', '[0.1,1]'),
  (4, '[10, 20, 30]', '[0,1]'),
  (5, NULL, '[1,1]');
SELECT id, metadata_->>'kind' AS kind, metadata_->'price' AS price FROM meta_t ORDER BY id;
SELECT id FROM meta_t WHERE metadata_->>'kind' = 'fruit' ORDER BY embedding <=> '[1,0]' LIMIT 3;
SELECT id FROM meta_t WHERE (metadata_->>'price')::float > 1.5 ORDER BY id;
SELECT id FROM meta_t WHERE metadata_->>'kind' IN ('fish', 'vegetable') ORDER BY id;
SELECT metadata_->'tags', metadata_->'tags'->>0, metadata_->'tags'->> -1, metadata_->'tags'->>5 FROM meta_t WHERE id = 1;
SELECT metadata_->>'color' IS NULL, metadata_->'color', metadata_->>'missing' FROM meta_t WHERE id = 2;
SELECT metadata_->'nested', metadata_->'nested'->>'a' FROM meta_t WHERE id = 3;
SELECT metadata_->>1, metadata_-> -1, metadata_->>'x' FROM meta_t WHERE id = 4;
SELECT metadata_->>'kind' FROM meta_t WHERE id = 5;
DELETE FROM meta_t WHERE metadata_->>'ref_doc_id' = 'd1';
SELECT id FROM meta_t ORDER BY id;
DROP TABLE meta_t;
