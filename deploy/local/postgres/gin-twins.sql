-- FerretDB v1 on PostgreSQL pushes an equality filter on a top-level field down to SQL as
-- `_jsonb -> 'field' @> '<value>'`, but creates its indexes (createIndexes, and the unique
-- index on _id) as B-trees on `(_jsonb -> 'field')`, which cannot serve `@>`: every pushed
-- lookup, even by _id, scans the table. This gives each such B-tree index a GIN twin on the
-- same expression (jsonb_path_ops, which serves `@>`; fastupdate off, so that lookups never
-- wade through a pending list), so that the lookups FerretDB pushes down are index scans and
-- cost the same at any size (docs/benchmarks.md, "Store"): for the indexes that exist when it
-- runs, and, by an event trigger, for every one created after.
-- Installed by deploy/local/stack.sh; elsewhere run it once per database as a superuser (an
-- event trigger needs one). Idempotent.

CREATE OR REPLACE FUNCTION buurtalert_gin_twin(index_oid oid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  idx record;
  expr text;
  col int;
BEGIN
  SELECT i.indexrelid, i.indrelid, i.indnkeyatts, am.amname
    INTO idx
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_am am ON am.oid = c.relam
   WHERE i.indexrelid = index_oid;
  IF NOT FOUND OR idx.amname <> 'btree' THEN
    RETURN;
  END IF;
  FOR col IN 1 .. idx.indnkeyatts LOOP
    expr := pg_get_indexdef(idx.indexrelid, col, false);
    -- FerretDB's key expressions on a top-level field only, ((_jsonb -> 'field'::text)):
    -- FerretDB v1 does not push down dotted paths.
    IF expr ~ '^\(*_jsonb -> ''[^'']*''::text\)*$' THEN
      EXECUTE format(
        'CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((%s) jsonb_path_ops) WITH (fastupdate = off)',
        'gin_' || substr(md5(idx.indrelid::text || ':' || expr), 1, 24), idx.indrelid::regclass::text, expr);
    END IF;
  END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION buurtalert_gin_twins() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
  cmd record;
BEGIN
  FOR cmd IN SELECT * FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'CREATE INDEX' LOOP
    PERFORM buurtalert_gin_twin(cmd.objid);
  END LOOP;
END
$$;

DROP EVENT TRIGGER IF EXISTS buurtalert_gin_twins;
CREATE EVENT TRIGGER buurtalert_gin_twins ON ddl_command_end
  WHEN TAG IN ('CREATE INDEX')
  EXECUTE FUNCTION buurtalert_gin_twins();

-- The indexes created before this ran.
SELECT buurtalert_gin_twin(i.indexrelid)
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_am am ON am.oid = c.relam
 WHERE am.amname = 'btree' AND c.relnamespace <> 'pg_catalog'::regnamespace
   AND c.relnamespace <> 'information_schema'::regnamespace;
