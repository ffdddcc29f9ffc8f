-- float4 and float8 text output (float4out, float8out): Ryū's shortest
-- digits, a tie rounded to even, plain notation for decimal exponents in
-- -4..6 (float4) and -4..15 (float8), else d.ddde+NN. Cast to text: psycopg
-- would read a float column back as a Python float and compare it loosely.
SELECT 2070951.25::float4::text AS f4, 2070951.25::real::text AS r, '2070951.25'::float4::text AS lit, 2070951.25::float8::text AS f8;
SELECT 1e15::float8::text AS e15, 1e16::float8::text AS e16, 1e14::float8::text AS e14, '999999999999999.9'::float8::text AS below_e15;
SELECT '2.98023223876953125e-8'::float8::text AS tie25, '5.9604644775390625e-7'::float8::text AS tie24, power(2::float8, -25)::text AS pow;
SELECT 1e-4::float8::text AS em4, 1e-5::float8::text AS em5, '9.999999999999999e-05'::float8::text AS below_em4;
SELECT 123456789012345680::float8::text AS big, '-0'::float8::text AS negzero, 'Infinity'::float8::text AS inf, '-Infinity'::float8::text AS neginf, 'NaN'::float8::text AS nan;
SELECT '5e-324'::float8::text AS denorm, '1.7976931348623157e308'::float8::text AS max, '2.2250738585072014e-308'::float8::text AS min_normal;
SELECT 1e6::float4::text AS e6, '999999.94'::float4::text AS below_e6, 1e7::float4::text AS e7, 1234567::float4::text AS i7, 123456::float4::text AS i6;
SELECT 1e-4::float4::text AS em4, '9.999999e-05'::float4::text AS below_em4, 1e-5::float4::text AS em5, '-0'::float4::text AS negzero, 'Infinity'::float4::text AS inf, 'NaN'::float4::text AS nan;
SELECT '3.4028235e38'::float4::text AS max, '1.4e-45'::float4::text AS denorm, '1.1754944e-38'::float4::text AS min_normal;
SELECT ARRAY[2070951.25::float4, 1e6::float4, 1e-5::float4]::text AS f4s, ARRAY[1e15::float8, 1e-5::float8, 0.1::float8]::text AS f8s;
SELECT json_build_array(2070951.25::float4, 1e16::float8, 0.5::float8)::text AS j;
CREATE TABLE float_text (id int PRIMARY KEY, r real, d double precision);
INSERT INTO float_text VALUES (1, 2070951.25, 1e15), (2, 1e-5, 1e-5), (3, 999999.94, 123456789012345680), (4, '-0', '-0');
SELECT id, r::text AS r, d::text AS d FROM float_text ORDER BY id;
DROP TABLE float_text;
