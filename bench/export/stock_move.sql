-- Fills the Odoo 17 fixture's stock_move (sql/odoo17/, loaded by scripts/load-odoo-fixture.sh)
-- up to :rows rows (psql -v rows=1000000) for the export benchmark. The fixture's own moves stay;
-- every generated row is a copy of one of them (in turn), so its company, locations, picking,
-- picking type, warehouse, manufacturing order, work order, BOM line, partner and users are
-- real rows of the fixture, with:
--   - the product (and its unit) taken in turn from the fixture's storable and consumable
--     products, and the move's name following it as Odoo writes it ("[FURN_8522] Table Top");
--   - its own state, quantities (numeric, 2 decimals), dates spread over about a year and a
--     half at 37-second steps, and document numbers (WH/MO/00123, WH/OUT/00123, …).
-- Deterministic (no random()): every run of the benchmark exports the same bytes.
-- The foreign keys are not checked while inserting (session_replication_role = replica: the
-- referenced ids come from existing rows anyway); the table is vacuumed, frozen and analyzed
-- afterwards, so no reader pays for setting hint bits.

\set ON_ERROR_STOP on
SET session_replication_role = replica;

CREATE TEMP TABLE bench_tmpl AS
    SELECT (row_number() OVER (ORDER BY id) - 1)::int AS k, * FROM stock_move;
CREATE TEMP TABLE bench_product AS
    SELECT (row_number() OVER (ORDER BY pp.id) - 1)::int AS k, pp.id, pt.uom_id,
           coalesce('[' || pp.default_code || '] ', '') || (pt.name ->> 'en_US') AS display_name
      FROM product_product pp
      JOIN product_template pt ON pt.id = pp.product_tmpl_id
     WHERE pt.type IN ('product', 'consu');

SELECT count(*) AS have, max(id) AS max_id FROM stock_move \gset
SELECT count(*) AS ntmpl FROM bench_tmpl \gset
SELECT count(*) AS nprod FROM bench_product \gset

INSERT INTO stock_move (
    id, sequence, company_id, product_id, product_uom, location_id, location_dest_id, partner_id,
    picking_id, scrap_id, group_id, rule_id, picking_type_id, origin_returned_move_id,
    restrict_partner_id, warehouse_id, package_level_id, next_serial_count, orderpoint_id,
    product_packaging_id, create_uid, write_uid, name, priority, state, origin, procure_method,
    reference, next_serial, reservation_date, description_picking, product_qty, product_uom_qty,
    quantity, picked, scrapped, propagate_cancel, is_inventory, additional, date, date_deadline,
    delay_alert_date, create_date, write_date, price_unit, is_done, unit_factor,
    created_production_id, production_id, raw_material_production_id, unbuild_id,
    consume_unbuild_id, operation_id, workorder_id, bom_line_id, byproduct_id,
    order_finished_lot_id, cost_share, manual_consumption, to_refund, purchase_line_id, sale_line_id)
SELECT
    :max_id + g,
    t.sequence, t.company_id, p.id, p.uom_id, t.location_id, t.location_dest_id, t.partner_id,
    t.picking_id, t.scrap_id, t.group_id, t.rule_id, t.picking_type_id, t.origin_returned_move_id,
    t.restrict_partner_id, t.warehouse_id, t.package_level_id, t.next_serial_count, t.orderpoint_id,
    t.product_packaging_id, t.create_uid, t.write_uid,
    CASE WHEN t.name = 'Product Quantity Updated' OR t.name LIKE '%/%' THEN t.name ELSE p.display_name END,
    CASE WHEN g % 17 = 0 THEN '1' ELSE '0' END,
    v.state,
    regexp_replace(t.origin, '[0-9]+$', v.docno),
    t.procure_method,
    regexp_replace(t.reference, '[0-9]+$', v.docno),
    t.next_serial,
    CASE WHEN v.state IN ('assigned', 'partially_available') THEN (v.date + INTERVAL '1 day')::date END,
    t.description_picking,
    v.qty,
    v.qty,
    CASE v.state WHEN 'done' THEN v.qty WHEN 'assigned' THEN v.qty
                 WHEN 'partially_available' THEN round(v.qty / 2, 2) ELSE 0 END,
    v.state = 'done',
    false,
    t.propagate_cancel,
    t.is_inventory,
    t.additional,
    v.date,
    CASE WHEN t.date_deadline IS NOT NULL THEN v.date + INTERVAL '7 days' END,
    CASE WHEN g % 101 = 0 THEN v.date + INTERVAL '2 days 4 hours' END,
    v.date - INTERVAL '3 days' + (g % 3600) * INTERVAL '1 second' + (g % 997) * INTERVAL '1 microsecond',
    v.date + (g % 7200) * INTERVAL '1 second' + (g % 991) * INTERVAL '1 microsecond',
    CASE WHEN t.price_unit IS NOT NULL THEN round((((g % 9973) + 1) / 7.0)::numeric, 4)::float8 END,
    v.state = 'done',
    t.unit_factor,
    t.created_production_id, t.production_id, t.raw_material_production_id, t.unbuild_id,
    t.consume_unbuild_id, t.operation_id, t.workorder_id, t.bom_line_id, t.byproduct_id,
    t.order_finished_lot_id, t.cost_share, t.manual_consumption, t.to_refund, t.purchase_line_id,
    t.sale_line_id
FROM generate_series(1, :rows - :have) AS g
JOIN bench_tmpl t ON t.k = g % :ntmpl
JOIN bench_product p ON p.k = (g / :ntmpl) % :nprod
CROSS JOIN LATERAL (
    SELECT (ARRAY['draft', 'confirmed', 'waiting', 'partially_available', 'assigned',
                  'done', 'done', 'done', 'done', 'cancel'])[1 + g % 10] AS state,
           lpad((100 + g / :ntmpl)::text, 5, '0') AS docno,
           round(1 + (g % 500) * 0.25, 2) AS qty,
           TIMESTAMP '2025-01-06 06:00:00' + g * INTERVAL '37 seconds' AS date
) v;

SELECT setval('stock_move_id_seq', (SELECT max(id) FROM stock_move));
RESET session_replication_role;
VACUUM (FREEZE, ANALYZE) stock_move;
