-- Generated from the shipped mappings (mappings/) by `cargo test grants::tests::shipped_grants`
-- (MILLRACE_BLESS=1 rewrites it). For your own configuration, run
-- `millrace setup --print-sql --for odoo|state|erp`, which also knows what exists already.
-- The ERP's database erp (MariaDB/MySQL), as an administrator: read what is polled and looked up, write
-- only the tables the mappings write.
-- (once: CREATE USER 'millrace'@'%' IDENTIFIED BY '…'; '%' is any host: narrow it to millrace's)
GRANT SELECT ON `erp`.`BOM_HEADER` TO 'millrace'@'%';
GRANT SELECT ON `erp`.`BOM_LINE` TO 'millrace'@'%';
GRANT SELECT, INSERT, UPDATE ON `erp`.`INV_TRANS` TO 'millrace'@'%';
GRANT SELECT, INSERT, UPDATE ON `erp`.`ITEM_MASTER` TO 'millrace'@'%';
GRANT SELECT ON `erp`.`LOT_MASTER` TO 'millrace'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON `erp`.`PROD_ORDER` TO 'millrace'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON `erp`.`SO_HEADER` TO 'millrace'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON `erp`.`SO_LINE` TO 'millrace'@'%';
GRANT SELECT ON `erp`.`UOM` TO 'millrace'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON `erp`.`WORK_CENTER` TO 'millrace'@'%';
