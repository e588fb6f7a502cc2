-- Generated from the shipped mappings (mappings/) by `cargo test grants::tests::shipped_grants`
-- (MILLRACE_BLESS=1 rewrites it). For your own configuration, run
-- `millrace setup --print-sql --for odoo|state|erp`, which also knows what exists already.
-- The ERP's database erp (SQL Server), as an administrator: read what is polled and looked up, write
-- only the tables the mappings write.
-- (once: CREATE LOGIN … WITH PASSWORD = '…'; CREATE USER [millrace] FOR LOGIN …;)
GRANT SELECT ON [BOM_HEADER] TO [millrace];
GRANT SELECT ON [BOM_LINE] TO [millrace];
GRANT SELECT, INSERT, UPDATE ON [INV_TRANS] TO [millrace];
GRANT SELECT, INSERT, UPDATE ON [ITEM_MASTER] TO [millrace];
GRANT SELECT ON [LOT_MASTER] TO [millrace];
GRANT SELECT, INSERT, UPDATE, DELETE ON [PROD_ORDER] TO [millrace];
GRANT SELECT, INSERT, UPDATE, DELETE ON [SO_HEADER] TO [millrace];
GRANT SELECT, INSERT, UPDATE, DELETE ON [SO_LINE] TO [millrace];
GRANT SELECT ON [UOM] TO [millrace];
GRANT SELECT, INSERT, UPDATE, DELETE ON [WORK_CENTER] TO [millrace];
