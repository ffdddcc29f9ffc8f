-- pgvector's operators, functions and casts.
SELECT '[1,2,3]'::vector <-> '[4,5,6]', '[1,2,3]'::vector <#> '[4,5,6]', '[1,2,3]'::vector <=> '[4,5,6]', '[1,2,3]'::vector <+> '[4,5,6]';
-- Element text: Ryū's shortest digits, a tie rounded to even (2070951.25), both notations.
SELECT '[2070951.25,2070951.75,0.0001,1e-05,123456,1234567,3e38,-0.5]'::vector, '{1:2070951.25,3:1e-05}/3'::sparsevec;
SELECT '[1,2,3]'::halfvec <-> '[4,5,6]', '[1,2,3]'::halfvec <=> '[4,5,6]';
SELECT '{1:1,3:2}/5'::sparsevec <-> '{2:1}/5', '{1:1,3:2}/5'::sparsevec <#> '{1:3}/5';
SELECT '101'::bit(3) <~> '111', '1010'::bit(4) <%> '1111';
SELECT l2_distance('[1,2]'::vector, '[3,4]'), cosine_distance('[1,2]'::vector, '[2,4]'), inner_product('[1,2]'::vector, '[3,4]'), l1_distance('[1,2]'::vector, '[3,5]');
SELECT vector_dims('[1,2,3]'::vector), vector_norm('[3,4]'::vector), l2_normalize('[3,4]'::vector), binary_quantize('[1,-2,3]'::vector), subvector('[1,2,3,4]'::vector, 2, 2);
SELECT '[1,2,3]'::vector + '[4,5,6]', '[1,2,3]'::vector - '[4,5,6]', '[1,2,3]'::vector * '[4,5,6]', '[1,2]'::vector || '[3]';
SELECT '[1,2,3]'::vector(3), '[1.5,2,3]'::halfvec(3), '[1,0,2]'::vector::sparsevec, '{1:1,3:2}/3'::sparsevec::vector;
SELECT '[1,2,3]'::vector = '[1,2,3]', '[1,2,3]'::vector < '[1,2,4]';
SELECT '[1,2]'::vector(3);
SELECT '[1,2,3]'::vector <-> '[1,2]';
SELECT '[1,2,a]'::vector;
SELECT '[1,2,3]'::vector <-> '[1,2,4]'::halfvec;
SELECT '[1,2,3]'::vector <-> '101'::bit(3);
SELECT binary_quantize('[1,-2,3]');
