-- The SQL fixture's copy with the demo ERP's numbers in it, for the paths that have no Odoo
-- server, only this dump (docker compose, bench/large, bench/sync, `DEMO_ODOO=sql`): a dump
-- cannot be written through Odoo's ORM, and millrace never writes Odoo's tables with SQL, so
-- these paths load the fixture as if `millrace reconcile --bind --repair --apply` had run.
-- Against a real Odoo (scripts/demo.sh, the tests) nothing is aligned by hand: reconcile binds
-- records by the mappings' match rules and writes the ERP's numbers through the ORM.
--
-- The demo legacy ERP numbered BOM alternates '01', '02', … and BOM line numbers 10, 20, … by
-- Odoo's sequence then id (sql/legacy/mariadb/demo-data.sql). Odoo's sequences themselves are
-- not those numbers, and the shipped mappings match BOMs on mrp_bom.sequence and lines on
-- mrp_bom_line.sequence: make the sequences hold the ERP's numbers.
UPDATE mrp_bom b SET sequence = r.alt
  FROM (SELECT id, row_number() OVER (PARTITION BY product_tmpl_id ORDER BY sequence, id) AS alt FROM mrp_bom) r
 WHERE r.id = b.id;
UPDATE mrp_bom_line l SET sequence = r.line_no
  FROM (SELECT id, 10 * row_number() OVER (PARTITION BY bom_id ORDER BY sequence, id) AS line_no FROM mrp_bom_line) r
 WHERE r.id = l.id;

-- Items: the ERP knows products without an internal reference as 'PP-' + the product id in six
-- digits (the rule the demo data was derived by); give them that reference in Odoo too, so the
-- item mapping, which matches on default_code, finds them instead of creating copies.
UPDATE product_product SET default_code = 'PP-' || lpad(id::text, 6, '0') WHERE default_code IS NULL;
