-- Columns of type timestamp (without time zone: SQLAlchemy's DateTime,
-- Prisma's and Drizzle's default) and interval: defaults from now(),
-- text input, arithmetic against them, ORDER BY, a btree index, and the
-- types as the catalogs print them.
CREATE TABLE jobs (id serial PRIMARY KEY, name text, created_at timestamp DEFAULT now(), updated_at timestamp without time zone DEFAULT CURRENT_TIMESTAMP, every interval, started timestamptz);
INSERT INTO jobs (name, created_at, every, started) VALUES ('a', '2024-01-15 10:30:00', '1 day', '2024-01-15 10:30:00+00'), ('b', '2024-01-15 10:30:00.123456', '2 hours 30 minutes', '2024-01-16 00:00+00'), ('c', '2024-02-29 23:59:59', interval '1 month', NULL);
INSERT INTO jobs (name) VALUES ('d');
SELECT id, name, created_at, every, started FROM jobs WHERE id < 4 ORDER BY created_at DESC;
SELECT name, created_at + every AS next_run, created_at::date AS day, created_at = started AS same FROM jobs WHERE id < 4 ORDER BY id;
SELECT count(*) AS recent FROM jobs WHERE created_at > now() - interval '1 minute' AND updated_at <= now();
SELECT name FROM jobs WHERE every > interval '1 hour' ORDER BY every;
SELECT sum(EXTRACT(epoch FROM every))::bigint AS seconds FROM jobs;
CREATE INDEX jobs_created ON jobs (created_at);
SELECT name FROM jobs WHERE created_at >= '2024-01-15' AND created_at < '2024-01-16' ORDER BY name;
UPDATE jobs SET every = every * 2, created_at = created_at + interval '1 day' WHERE name = 'a' RETURNING every, created_at;
SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'jobs' ORDER BY ordinal_position;
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'jobs'::regclass AND attnum > 0 ORDER BY attnum;
INSERT INTO jobs (name, created_at) VALUES ('e', 'not a time');
INSERT INTO jobs (name, every) VALUES ('f', '1 fortnight');
DROP TABLE jobs;
SELECT typname, typcategory, typlen FROM pg_type WHERE typname IN ('date', 'interval', 'timestamp', 'timestamptz', '_interval') ORDER BY typname;
