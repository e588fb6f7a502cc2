-- Row generator for the decode benchmark: stock_move rows as Odoo 17's manufacturing flow
-- writes them (raw-material and finished-product moves of manufacturing orders WH/MO/xxxxx).
-- Deterministic (no random()), so every run decodes the same bytes.
--
-- bench_stock_moves(lo, hi) returns the rows with ids lo..hi, in stock_move's column order.
CREATE OR REPLACE FUNCTION bench_stock_moves(lo integer, hi integer)
RETURNS SETOF public.stock_move
LANGUAGE sql STABLE AS $$
SELECT
    g,                                                        -- id
    10 + (g % 4) * 10,                                        -- sequence
    1,                                                        -- company_id
    1 + (g % 2000),                                           -- product_id
    CASE WHEN g % 9 = 0 THEN 12 ELSE 1 END,                   -- product_uom
    CASE WHEN g % 3 = 0 THEN 17 ELSE 8 END,                   -- location_id
    CASE WHEN g % 3 = 0 THEN 8 ELSE 17 END,                   -- location_dest_id
    CASE WHEN g % 5 = 0 THEN 7 + (g % 300) END,               -- partner_id
    NULL::integer,                                            -- picking_id
    NULL::integer,                                            -- scrap_id
    1 + g / 7,                                                -- group_id
    1 + (g % 12),                                             -- rule_id
    CASE WHEN g % 3 = 0 THEN 9 ELSE 8 END,                    -- picking_type_id
    NULL::integer,                                            -- origin_returned_move_id
    NULL::integer,                                            -- restrict_partner_id
    1,                                                        -- warehouse_id
    NULL::integer,                                            -- package_level_id
    NULL::integer,                                            -- next_serial_count
    CASE WHEN g % 11 = 0 THEN 1 + (g % 400) END,              -- orderpoint_id
    NULL::integer,                                            -- product_packaging_id
    2,                                                        -- create_uid
    2,                                                        -- write_uid
    '[FURN_' || lpad((g % 2000)::text, 4, '0') || '] '
        || (ARRAY['Table Top', 'Table Leg', 'Screw M6x40', 'Bolt', 'Wood Panel', 'Drawer Black',
                  'Office Chair', 'Cabinet with Doors', 'Corner Desk Left Sit', 'Acoustic Bloc Screens'])
           [1 + g % 10],                                      -- name
    CASE WHEN g % 17 = 0 THEN '1' ELSE '0' END,               -- priority
    (ARRAY['draft', 'confirmed', 'confirmed', 'waiting', 'partially_available', 'assigned'])
        [1 + g % 6],                                          -- state
    'WH/MO/' || lpad((1 + g / 7)::text, 5, '0'),              -- origin
    CASE WHEN g % 4 = 0 THEN 'make_to_order' ELSE 'make_to_stock' END, -- procure_method
    'WH/MO/' || lpad((1 + g / 7)::text, 5, '0'),              -- reference
    NULL::varchar,                                            -- next_serial
    DATE '2024-03-01' + (g % 365),                            -- reservation_date
    CASE WHEN g % 6 = 0 THEN 'Handle with care: pallet ' || (g % 97) || ', aisle ' || (g % 13) END, -- description_picking
    round(((g % 250) + 1) * 1.5, 2),                          -- product_qty
    round(((g % 250) + 1) * 1.5, 2),                          -- product_uom_qty
    0,                                                        -- quantity
    false,                                                    -- picked
    false,                                                    -- scrapped
    g % 8 = 0,                                                -- propagate_cancel
    false,                                                    -- is_inventory
    false,                                                    -- additional
    TIMESTAMP '2024-03-01 08:00:00' + g * INTERVAL '31 seconds',          -- date
    TIMESTAMP '2024-03-08 17:00:00' + g * INTERVAL '31 seconds',          -- date_deadline
    NULL::timestamp,                                          -- delay_alert_date
    TIMESTAMP '2024-02-28 09:12:45.123456' + g * INTERVAL '29 seconds',   -- create_date
    TIMESTAMP '2024-02-28 09:12:45.123456' + g * INTERVAL '29 seconds',   -- write_date
    ((g % 9973) + 1) / 7.0,                                   -- price_unit (double)
    false,                                                    -- is_done
    CASE WHEN g % 9 = 0 THEN 12.0 ELSE 1.0 END,               -- unit_factor (double)
    NULL::integer,                                            -- created_production_id
    CASE WHEN g % 7 = 0 THEN 1 + g / 7 END,                   -- production_id (finished move)
    CASE WHEN g % 7 <> 0 THEN 1 + g / 7 END,                  -- raw_material_production_id
    NULL::integer,                                            -- unbuild_id
    NULL::integer,                                            -- consume_unbuild_id
    CASE WHEN g % 7 <> 0 THEN 1 + (g % 40) END,               -- operation_id
    CASE WHEN g % 7 <> 0 THEN 1 + g / 3 END,                  -- workorder_id
    CASE WHEN g % 7 <> 0 THEN 1 + (g % 5000) END,             -- bom_line_id
    NULL::integer,                                            -- byproduct_id
    NULL::integer,                                            -- order_finished_lot_id
    CASE WHEN g % 7 = 0 THEN 100 ELSE 0 END,                  -- cost_share
    g % 10 = 0,                                               -- manual_consumption
    false,                                                    -- to_refund
    NULL::integer,                                            -- purchase_line_id
    NULL::integer                                             -- sale_line_id
FROM generate_series(lo, hi) AS g
$$;
