-- statement_timeout stops a running SELECT with 57014 (a shard runs the
-- SELECT on its session's thread; the runtime's timer fires the cancel).
SET statement_timeout = '50ms';
SELECT pg_sleep(2);
SELECT 1 AS still_there;
RESET statement_timeout;
