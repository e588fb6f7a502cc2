-- Generated from the shipped mappings (mappings/) by `cargo test grants::tests::shipped_grants`
-- (MILLRACE_BLESS=1 rewrites it). For your own configuration, run
-- `millrace setup --print-sql --for odoo|state|erp`, which also knows what exists already.
-- Odoo's database "odoo" (PostgreSQL), as its owner or a superuser. The role needs no write right:
-- millrace writes into Odoo only through its API.
-- (once: CREATE ROLE "millrace" LOGIN REPLICATION PASSWORD '…';)
ALTER ROLE "millrace" NOSUPERUSER REPLICATION;
GRANT CONNECT ON DATABASE "odoo" TO "millrace";
GRANT USAGE ON SCHEMA "public" TO "millrace";
GRANT SELECT ON "public"."ir_property" TO "millrace";
GRANT SELECT ON "public"."mrp_bom" TO "millrace";
GRANT SELECT ON "public"."mrp_bom_line" TO "millrace";
GRANT SELECT ON "public"."mrp_production" TO "millrace";
GRANT SELECT ON "public"."mrp_workcenter" TO "millrace";
GRANT SELECT ON "public"."product_product" TO "millrace";
GRANT SELECT ON "public"."product_template" TO "millrace";
GRANT SELECT ON "public"."res_partner" TO "millrace";
GRANT SELECT ON "public"."sale_order" TO "millrace";
GRANT SELECT ON "public"."sale_order_line" TO "millrace";
GRANT SELECT ON "public"."stock_location" TO "millrace";
GRANT SELECT ON "public"."stock_lot" TO "millrace";
GRANT SELECT ON "public"."stock_move" TO "millrace";
GRANT SELECT ON "public"."stock_move_line" TO "millrace";
GRANT SELECT ON "public"."stock_warehouse" TO "millrace";
GRANT SELECT ON "public"."uom_uom" TO "millrace";
-- The publication (only a table's owner may publish it):
CREATE PUBLICATION "millrace" FOR TABLE "public"."mrp_bom", "public"."product_product", "public"."uom_uom", "public"."mrp_bom_line", "public"."stock_move", "public"."product_template", "public"."stock_lot", "public"."mrp_production", "public"."sale_order", "public"."res_partner", "public"."stock_warehouse", "public"."sale_order_line", "public"."mrp_workcenter";
