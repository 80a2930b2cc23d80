-- FerretDB v1 on PostgreSQL pushes an equality filter on a top-level field down to SQL as
-- `_jsonb -> 'field' @> '<value>'`, but creates its indexes (createIndexes, and the unique
-- index on _id) as B-trees on `(_jsonb -> 'field')`, which cannot serve `@>`: every pushed
-- lookup, even by _id, scans the table. This event trigger gives each such B-tree index a
-- GIN twin on the same expression (jsonb_path_ops, which serves `@>`), so that the lookups
-- FerretDB pushes down are index scans and cost the same at any size (docs/benchmarks.md).
-- Installed once per database by deploy/local/stack.sh (an event trigger needs a superuser);
-- a deployment on its own PostgreSQL runs this file once as well. Idempotent.

CREATE OR REPLACE FUNCTION buurtalert_gin_twins() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
  cmd record;
  idx record;
  expr text;
  col int;
  twin text;
BEGIN
  FOR cmd IN SELECT * FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'CREATE INDEX' LOOP
    SELECT i.indexrelid, i.indrelid, i.indnkeyatts, am.amname, c.relnamespace::regnamespace::text AS schema_name
      INTO idx
      FROM pg_index i
      JOIN pg_class c ON c.oid = i.indexrelid
      JOIN pg_am am ON am.oid = c.relam
     WHERE i.indexrelid = cmd.objid;
    IF idx IS NULL OR idx.amname <> 'btree' THEN
      CONTINUE;
    END IF;
    FOR col IN 1 .. idx.indnkeyatts LOOP
      expr := pg_get_indexdef(idx.indexrelid, col, false);
      -- FerretDB's key expressions on a top-level field only, ((_jsonb -> 'field'::text)):
      -- FerretDB v1 does not push down dotted paths.
      IF expr !~ '^\(*_jsonb -> ''[^'']*''::text\)*$' THEN
        CONTINUE;
      END IF;
      twin := 'gin_' || substr(md5(idx.indrelid::text || ':' || expr), 1, 24);
      EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((%s) jsonb_path_ops) WITH (fastupdate = off)',
                     twin, idx.indrelid::regclass::text, expr);
    END LOOP;
  END LOOP;
END
$$;

DROP EVENT TRIGGER IF EXISTS buurtalert_gin_twins;
CREATE EVENT TRIGGER buurtalert_gin_twins ON ddl_command_end
  WHEN TAG IN ('CREATE INDEX')
  EXECUTE FUNCTION buurtalert_gin_twins();
