-- Everyday scalar functions beside pgvector's: string functions (also
-- the standard SUBSTRING / TRIM / POSITION forms), concat with NULLs,
-- greatest / least / nullif, and math over double precision (a shard
-- computes numeric as double precision, so the inputs are float8 here),
-- with PostgreSQL's errors for bad arguments and NULL for NULL.
SELECT replace('abcabc', 'b', 'xy') AS a, replace('abc', '', 'x') AS b, split_part('a,b,c', ',', 2) AS c, split_part('a,b,c', ',', -1) AS d, split_part('a,b,c', ',', 5) AS e, md5('hello') AS f;
SELECT left('abcdef', 2), right('abcdef', 2), left('abcdef', -2), right('abcdef', -2), left('ab', 5);
SELECT substr('abcdef', 2, 3), substr('abcdef', 0, 3), substr('abcdef', -1), substring('abcdef' from 3), substring('abcdef' from 2 for 2), substring('abcdef', 2, 1);
SELECT trim('  x  '), trim(leading 'x' from 'xxaxx'), trim(trailing 'x' from 'xxaxx'), trim(both 'xy' from 'xyaxy'), btrim('xxaxx', 'x'), ltrim('  a'), rtrim('a  '), ltrim('xxa', 'x');
SELECT repeat('ab', 3), repeat('ab', 0), reverse('abc'), initcap('hello wORLD foo-bar'), lpad('5', 3, '0'), rpad('5', 3, 'ab'), lpad('hello', 2), lpad('x', 4), rpad('x', 3, '');
SELECT starts_with('abc', 'ab'), strpos('hello', 'l'), strpos('hello', 'z'), position('lo' in 'hello'), char_length('héllo'), octet_length('héllo'), ascii('A'), chr(65), translate('12345', '143', 'ax');
SELECT concat('a', NULL, 1, true, 2.5), concat_ws('-', 'a', NULL, 'b', 3), concat_ws(NULL, 'a');
SELECT greatest(1, 2, 3), least(1, 2), greatest(1, NULL, 3), least('b', 'a'), greatest(1, 2.5::float8), greatest(NULL::int, NULL), nullif(1, 1), nullif(1, 2), nullif('a', 'b');
SELECT greatest();
SELECT least();
SELECT ceil(1.2::float8), floor(1.8::float8), ceiling(-1.5::float8), floor(-1.5::float8), sqrt(16::float8), power(2::float8, 10), pow(2::float8, 0.5::float8), mod(7, 3), mod(-7, 3), sign(-2::float8), exp(0::float8), ln(1::float8), log(100::float8), pi(), trunc(2.567::float8), cbrt(8::float8), degrees(pi()), radians(180::float8), log10(1000::float8);
SELECT random() >= 0 AND random() < 1 AS r;
SELECT pg_typeof(ceil(1.5::float8)), pg_typeof(sqrt(2::float8)), pg_typeof(mod(7::bigint, 3)), pg_typeof(mod(7::smallint, 3::smallint)), pg_typeof(greatest(1, 2::bigint)), pg_typeof(least(1.5::float8, 2));
SELECT pg_typeof(strpos('a', 'a')), pg_typeof(left('a', 1)), pg_typeof(starts_with('a', 'b'));
SELECT sqrt(-1);
SELECT log(0);
SELECT mod(1, 0);
SELECT split_part('a', ',', 0);
SELECT substr('abc', 1, -1);
SELECT power(0, -1);
SELECT replace(NULL, 'a', 'b') IS NULL, upper(substr(NULL, 1)) IS NULL, lpad(NULL, 3) IS NULL;
SELECT concat();
