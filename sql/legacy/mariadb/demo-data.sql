-- The demo legacy ERP: demo data, MariaDB dialect (for schema.sql; see there for the tables).
--
-- A small, consistent data set that mirrors the manufacturing data of the Odoo 17 fixture
-- (sql/odoo17/odoo17-mfg-demo-data.sql) as this ERP would hold it, so that sync tests can
-- match the two sides. It was derived from the fixture by the rules below (../README.md has
-- them too); QUALITY_RESULT alone has no Odoo counterpart (Odoo Community has no quality
-- module) and was written by hand.
--
--   ITEM_MASTER   one row per Odoo product.product (variant). ITEM_NO = default_code, or
--                 'PP-' + the product.product id in 6 digits when it has none (PP-000003 =
--                 Virtual Interior Design). DESCRIPTION = the template's name (en_US).
--                 ITEM_TYPE 'S' for services, 'M' when the template has a BOM, else 'P';
--                 LOT_CONTROL from tracking; STD_COST from ir_property standard_price of the
--                 variant (0 when it has none); LIST_PRICE = list_price.
--                 Not here: "JSONRPC Widget" (JRPC-20261127-000120): its code is 20 chars and
--                 ITEM_NO is 18, so it cannot exist in this ERP (a sync must reject it).
--   UOM           the 26 Odoo uom.uom, DESCRIPTION = Odoo's name; FACTOR = 1 / Odoo's factor,
--                 rounded to 8 places (so it inherits Odoo's approximations: 1 LB = 0.45359291).
--   WORK_CENTER   Odoo has no codes: ASSY1 = Assembly Line 1, DRILL1 = Drill Station 1
--                 (working_state blocked: STATUS 'B'), ASSY2 = Assembly Line 2.
--   BOM_HEADER    one per mrp.bom; BOM_ALT numbers a template's BOMs by sequence ('01', '02');
--                 DESCRIPTION = the BOM's reference (code); phantom = 'K'.
--   BOM_LINE      LINE_NO = 10, 20, ... by sequence then id; manual_consumption = 'M'.
--   SO_HEADER     ORDER_NO = the Odoo name (S00001); CUST_NO = 'C' + res.partner id in 5
--                 digits; draft/sent = 'O', sale = 'R' (none is fully delivered yet).
--   SO_LINE       LINE_NO = 10, 20, ... by sequence then id.
--   PROD_ORDER    ORDER_NO = MO + the Odoo id in 8 digits (MO00000001); draft 'O', confirmed 'R', done
--                 'C'; START_DATE = date_start, DUE_DATE = date_deadline or else
--                 date_finished; WC_CODE from the first work order ('' when none).
--   INV_TRANS     one per done stock.move.line, numbered by move date then line id; the
--                 fixture's inventory adjustments ('AJ'), production issues ('PI') and
--                 receipts ('PR'). WHSE_CODE = the Odoo warehouse code (WH, CHIC1).
--   LOT_MASTER    one per stock.lot; QTY_ON_HAND = its quants in internal locations.
--   Dates         Odoo's UTC converted to Europe/Brussels local time, whole seconds.
--   LAST_UPD      not given: the load time (its default), like rows an ERP wrote just now.
--
-- Row counts: UOM 26, ITEM_MASTER 53, WORK_CENTER 3, BOM_HEADER 8, BOM_LINE 17,
-- SO_HEADER 24, SO_LINE 50, PROD_ORDER 7, INV_TRANS 42, LOT_MASTER 14, QUALITY_RESULT 14.

SET NAMES utf8mb4;
START TRANSACTION;

INSERT INTO UOM (UOM_CODE, DESCRIPTION, BASE_UOM, FACTOR, STATUS) VALUES
    ('EA', 'Units', 'EA', 1.00000000, 'A'),
    ('DZ', 'Dozens', 'EA', 12.00000000, 'A'),
    ('DAY', 'Days', 'DAY', 1.00000000, 'A'),
    ('HR', 'Hours', 'DAY', 0.12500000, 'A'),
    ('M', 'm', 'M', 1.00000000, 'A'),
    ('MM', 'mm', 'M', 0.00100000, 'A'),
    ('KM', 'km', 'M', 1000.00000000, 'A'),
    ('CM', 'cm', 'M', 0.01000000, 'A'),
    ('M2', 'm²', 'M2', 1.00000000, 'A'),
    ('L', 'L', 'L', 1.00000000, 'A'),
    ('M3', 'm³', 'L', 1000.00000000, 'A'),
    ('KG', 'kg', 'KG', 1.00000000, 'A'),
    ('G', 'g', 'KG', 0.00100000, 'A'),
    ('T', 't', 'KG', 1000.00000000, 'A'),
    ('LB', 'lb', 'KG', 0.45359291, 'A'),
    ('OZ', 'oz', 'KG', 0.02834949, 'A'),
    ('IN', 'in', 'M', 0.02539999, 'A'),
    ('FT', 'ft', 'M', 0.30479999, 'A'),
    ('YD', 'yd', 'M', 0.91440276, 'A'),
    ('MI', 'mi', 'M', 1609.34000000, 'A'),
    ('FT2', 'ft²', 'M2', 0.09290304, 'A'),
    ('FLOZ', 'fl oz (US)', 'L', 0.02957355, 'A'),
    ('QT', 'qt (US)', 'L', 0.94635134, 'A'),
    ('GAL', 'gal (US)', 'L', 3.78541000, 'A'),
    ('IN3', 'in³', 'L', 0.01638708, 'A'),
    ('FT3', 'ft³', 'L', 28.31680000, 'A');

INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE, ITEM_TYPE, LOT_CONTROL, STD_COST, LIST_PRICE, STATUS) VALUES
    ('CONS_25630', 'Screw', 'EA', 'P', 'N', 0.1000, 0.2000, 'A'),
    ('CONS_89957', 'Bolt', 'EA', 'P', 'N', 0.5000, 0.5000, 'A'),
    ('DESK0005', 'Customizable Desk', 'EA', 'P', 'N', 0.0000, 750.0000, 'A'),
    ('DESK0006', 'Customizable Desk', 'EA', 'P', 'N', 0.0000, 750.0000, 'A'),
    ('E-COM06', 'Corner Desk Right Sit', 'EA', 'P', 'N', 600.0000, 147.0000, 'A'),
    ('E-COM07', 'Large Cabinet', 'EA', 'P', 'N', 800.0000, 320.0000, 'A'),
    ('E-COM08', 'Storage Box', 'EA', 'P', 'N', 14.0000, 15.8000, 'A'),
    ('E-COM09', 'Large Desk', 'EA', 'P', 'N', 1299.0000, 1799.0000, 'A'),
    ('E-COM10', 'Pedal Bin', 'EA', 'P', 'N', 10.0000, 47.0000, 'A'),
    ('E-COM11', 'Cabinet with Doors', 'EA', 'P', 'N', 120.5000, 140.0000, 'A'),
    ('E-COM12', 'Conference Chair', 'EA', 'P', 'N', 0.0000, 33.0000, 'A'),
    ('E-COM13', 'Conference Chair', 'EA', 'P', 'N', 0.0000, 33.0000, 'A'),
    ('FURN_0096', 'Customizable Desk', 'EA', 'P', 'N', 500.0000, 750.0000, 'A'),
    ('FURN_0097', 'Customizable Desk', 'EA', 'P', 'N', 500.0000, 750.0000, 'A'),
    ('FURN_0098', 'Customizable Desk', 'EA', 'P', 'N', 500.0000, 750.0000, 'A'),
    ('FURN_0269', 'Office Chair Black', 'EA', 'P', 'N', 180.0000, 120.5000, 'A'),
    ('FURN_0789', 'Individual Workplace', 'EA', 'P', 'N', 876.0000, 885.0000, 'A'),
    ('FURN_1118', 'Corner Desk Left Sit', 'EA', 'P', 'N', 78.0000, 85.0000, 'A'),
    ('FURN_2100', 'Drawer Black', 'EA', 'P', 'L', 20.0000, 24.0000, 'A'),
    ('FURN_2333', 'Table Leg', 'EA', 'P', 'L', 10.0000, 50.0000, 'A'),
    ('FURN_5555', 'Cable Management Box', 'EA', 'P', 'L', 70.0000, 100.0000, 'A'),
    ('FURN_5623', 'Drawer Case Black', 'EA', 'P', 'L', 10.0000, 20.0000, 'A'),
    ('FURN_6666', 'Acoustic Bloc Screens', 'EA', 'P', 'N', 287.0000, 295.0000, 'A'),
    ('FURN_6741', 'Large Meeting Table', 'EA', 'P', 'N', 4500.0000, 4000.0000, 'A'),
    ('FURN_7023', 'Wood Panel', 'EA', 'M', 'N', 80.0000, 100.0000, 'A'),
    ('FURN_7111', 'Ply Layer', 'EA', 'P', 'N', 10.0000, 10.0000, 'A'),
    ('FURN_7777', 'Office Chair', 'EA', 'P', 'N', 55.0000, 70.0000, 'A'),
    ('FURN_7800', 'Desk Combination', 'EA', 'M', 'N', 300.0000, 450.0000, 'A'),
    ('FURN_78236', 'Table Kit', 'EA', 'M', 'N', 600.0000, 147.0000, 'A'),
    ('FURN_7888', 'Desk Stand with Screen', 'EA', 'P', 'N', 2010.0000, 2100.0000, 'A'),
    ('FURN_8111', 'Wear Layer', 'EA', 'P', 'N', 10.0000, 10.0000, 'A'),
    ('FURN_8220', 'Four Person Desk', 'EA', 'P', 'N', 2500.0000, 2350.0000, 'A'),
    ('FURN_8522', 'Table Top', 'EA', 'M', 'S', 240.0000, 380.0000, 'A'),
    ('FURN_8621', 'Plastic Laminate', 'EA', 'M', 'N', 3000.0000, 1000.0000, 'A'),
    ('FURN_8855', 'Drawer', 'EA', 'M', 'L', 100.0000, 110.5000, 'A'),
    ('FURN_8888', 'Office Lamp', 'EA', 'P', 'N', 35.0000, 40.0000, 'A'),
    ('FURN_8900', 'Drawer Black', 'EA', 'P', 'N', 20.0000, 25.0000, 'A'),
    ('FURN_8999', 'Three-Seat Sofa', 'EA', 'P', 'N', 1000.0000, 1500.0000, 'A'),
    ('FURN_9001', 'Flipover', 'EA', 'P', 'N', 1700.0000, 1950.0000, 'A'),
    ('FURN_9111', 'Ply Veneer', 'EA', 'P', 'N', 10.0000, 10.0000, 'A'),
    ('FURN_9666', 'Table', 'EA', 'M', 'S', 290.0000, 520.0000, 'A'),
    ('FURN_9999', 'Office Design Software', 'EA', 'P', 'N', 235.0000, 280.0000, 'A'),
    ('PP-000001', 'Restaurant Expenses', 'EA', 'S', 'N', 8.0000, 14.0000, 'A'),
    ('PP-000002', 'Hotel Accommodation', 'DAY', 'S', 'N', 400.0000, 400.0000, 'A'),
    ('PP-000003', 'Virtual Interior Design', 'HR', 'S', 'N', 20.5000, 30.7500, 'A'),
    ('PP-000004', 'Virtual Home Staging', 'HR', 'S', 'N', 25.5000, 38.2500, 'A'),
    ('PP-000009', 'Customizable Desk', 'EA', 'P', 'N', 500.0000, 750.0000, 'A'),
    ('PP-000010', 'Customizable Desk', 'EA', 'P', 'N', 0.0000, 750.0000, 'A'),
    ('PP-000011', 'Customizable Desk', 'EA', 'P', 'N', 0.0000, 750.0000, 'A'),
    ('PP-000015', 'Customizable Desk', 'EA', 'P', 'N', 0.0000, 750.0000, 'A'),
    ('PP-000022', 'Conference Chair', 'EA', 'P', 'N', 28.0000, 33.0000, 'A'),
    ('PP-000052', 'Deposit', 'EA', 'S', 'N', 100.0000, 150.0000, 'A'),
    ('PP-000053', 'Chair floor protection', 'EA', 'P', 'N', 0.0000, 12.0000, 'A');

INSERT INTO WORK_CENTER (WC_CODE, DESCRIPTION, STATUS, CAPACITY, EFFICIENCY_PCT, COST_PER_HR) VALUES
    ('ASSY1', 'Assembly Line 1', 'A', 1.0000, 100.0000, 0.0000),
    ('ASSY2', 'Assembly Line 2', 'A', 1.0000, 100.0000, 0.0000),
    ('DRILL1', 'Drill Station 1', 'B', 1.0000, 100.0000, 0.0000);

INSERT INTO BOM_HEADER (ITEM_NO, BOM_ALT, DESCRIPTION, BOM_TYPE, BASE_QTY, UOM_CODE, STATUS) VALUES
    ('FURN_7023', '01', '', 'N', 1.0000, 'EA', 'A'),
    ('FURN_7800', '01', '', 'N', 1.0000, 'EA', 'A'),
    ('FURN_78236', '01', '', 'K', 1.0000, 'EA', 'A'),
    ('FURN_8522', '01', '', 'N', 1.0000, 'EA', 'A'),
    ('FURN_8621', '01', '', 'N', 1.0000, 'EA', 'A'),
    ('FURN_8855', '01', 'PRIM-ASSEM', 'N', 1.0000, 'EA', 'A'),
    ('FURN_8855', '02', 'SEC-ASSEM', 'N', 1.0000, 'EA', 'A'),
    ('FURN_9666', '01', '', 'N', 1.0000, 'EA', 'A');

INSERT INTO BOM_LINE (ITEM_NO, BOM_ALT, LINE_NO, COMP_ITEM_NO, QTY_PER, UOM_CODE, ISSUE_METHOD) VALUES
    ('FURN_7023', '01', 10, 'FURN_7111', 3.0000, 'EA', 'B'),
    ('FURN_7023', '01', 20, 'FURN_8111', 1.0000, 'EA', 'B'),
    ('FURN_7800', '01', 10, 'FURN_0269', 1.0000, 'EA', 'B'),
    ('FURN_7800', '01', 20, 'FURN_1118', 1.0000, 'EA', 'B'),
    ('FURN_7800', '01', 30, 'FURN_8900', 1.0000, 'EA', 'B'),
    ('FURN_78236', '01', 10, 'FURN_7023', 1.0000, 'EA', 'B'),
    ('FURN_78236', '01', 20, 'CONS_89957', 4.0000, 'EA', 'B'),
    ('FURN_8522', '01', 10, 'FURN_7023', 2.0000, 'EA', 'M'),
    ('FURN_8621', '01', 10, 'FURN_9111', 1.0000, 'EA', 'B'),
    ('FURN_8855', '01', 10, 'FURN_2100', 1.0000, 'EA', 'B'),
    ('FURN_8855', '01', 20, 'FURN_5623', 1.0000, 'EA', 'B'),
    ('FURN_8855', '02', 10, 'FURN_2100', 1.0000, 'EA', 'B'),
    ('FURN_8855', '02', 20, 'FURN_5623', 1.0000, 'EA', 'B'),
    ('FURN_9666', '01', 10, 'FURN_8522', 1.0000, 'EA', 'B'),
    ('FURN_9666', '01', 20, 'FURN_2333', 4.0000, 'EA', 'B'),
    ('FURN_9666', '01', 30, 'CONS_89957', 4.0000, 'EA', 'B'),
    ('FURN_9666', '01', 40, 'CONS_25630', 10.0000, 'EA', 'B');

INSERT INTO SO_HEADER (ORDER_NO, CUST_NO, CUST_NAME, CUST_PO_REF, ORDER_DATE, REQ_DATE, STATUS, ORDER_TOTAL, WHSE_CODE) VALUES
    ('S00001', 'C00010', 'Deco Addict', '', '2026-10-27 00:59:00', NULL, 'O', 1740.0000, 'WH'),
    ('S00002', 'C00012', 'Ready Mat', '', '2026-10-27 00:59:00', NULL, 'O', 2947.5000, 'WH'),
    ('S00003', 'C00012', 'Ready Mat', '', '2026-11-27 00:59:28', NULL, 'O', 377.5000, 'WH'),
    ('S00004', 'C00011', 'Gemini Furniture', '', '2026-11-27 00:59:28', NULL, 'R', 2240.0000, 'WH'),
    ('S00005', 'C00010', 'Deco Addict', '', '2026-10-27 00:59:00', NULL, 'O', 405.0000, 'WH'),
    ('S00006', 'C00015', 'Lumber Inc', '', '2026-11-27 00:59:28', NULL, 'R', 750.0000, 'WH'),
    ('S00007', 'C00011', 'Gemini Furniture', '', '2026-11-27 00:59:28', NULL, 'R', 1706.0000, 'WH'),
    ('S00008', 'C00011', 'Gemini Furniture', '', '2026-11-27 00:59:28', NULL, 'R', 462.0000, 'WH'),
    ('S00009', 'C00011', 'Gemini Furniture', '', '2026-11-20 00:59:28', NULL, 'R', 654.0000, 'WH'),
    ('S00010', 'C00011', 'Gemini Furniture', '', '2026-11-27 00:59:28', NULL, 'R', 751.0000, 'WH'),
    ('S00011', 'C00011', 'Gemini Furniture', '', '2026-11-06 00:59:28', NULL, 'R', 1096.5000, 'WH'),
    ('S00012', 'C00011', 'Gemini Furniture', '', '2026-11-27 00:59:28', NULL, 'R', 556.0000, 'WH'),
    ('S00013', 'C00011', 'Gemini Furniture', '', '2026-11-27 00:59:28', NULL, 'R', 415.5000, 'WH'),
    ('S00014', 'C00011', 'Gemini Furniture', '', '2026-11-27 00:59:28', NULL, 'R', 1582.0000, 'WH'),
    ('S00015', 'C00011', 'Gemini Furniture', '', '2026-11-13 00:59:28', NULL, 'R', 1541.5000, 'WH'),
    ('S00016', 'C00011', 'Gemini Furniture', '', '2026-11-27 00:59:28', NULL, 'R', 1186.5000, 'WH'),
    ('S00017', 'C00011', 'Gemini Furniture', '', '2026-10-30 00:59:28', NULL, 'R', 951.0000, 'WH'),
    ('S00018', 'C00011', 'Gemini Furniture', '', '2026-10-23 01:59:28', NULL, 'R', 831.0000, 'WH'),
    ('S00019', 'C00008', 'Joel Willis', '', '2026-10-27 00:59:00', NULL, 'O', 1740.0000, 'WH'),
    ('S00020', 'C00008', 'Joel Willis', '', '2026-10-27 00:59:28', NULL, 'R', 2947.5000, 'WH'),
    ('S00021', 'C00011', 'Gemini Furniture', '', '2026-11-27 00:59:33', NULL, 'R', 2175.0000, 'WH'),
    ('S00022', 'C00011', 'Gemini Furniture', '', '2026-11-27 00:59:33', NULL, 'R', 1475.0000, 'WH'),
    ('S00023', 'C00011', 'Gemini Furniture', '', '2026-11-27 00:59:33', NULL, 'R', 4350.0000, 'WH'),
    ('S00024', 'C00011', 'Gemini Furniture', '', '2026-11-27 00:59:33', NULL, 'R', 1990.0000, 'WH');

INSERT INTO SO_LINE (ORDER_NO, LINE_NO, ITEM_NO, QTY_ORDERED, QTY_SHIPPED, UOM_CODE, UNIT_PRICE, DISCOUNT_PCT) VALUES
    ('S00001', 10, 'FURN_6666', 3.0000, 0.0000, 'EA', 295.0000, 0.0000),
    ('S00001', 20, 'FURN_8888', 5.0000, 0.0000, 'EA', 145.0000, 0.0000),
    ('S00001', 30, 'FURN_7777', 2.0000, 0.0000, 'EA', 65.0000, 0.0000),
    ('S00002', 10, 'PP-000003', 24.0000, 0.0000, 'HR', 75.0000, 0.0000),
    ('S00002', 20, 'PP-000004', 30.0000, 0.0000, 'HR', 38.2500, 0.0000),
    ('S00003', 10, 'PP-000003', 10.0000, 0.0000, 'HR', 30.7500, 0.0000),
    ('S00003', 20, 'FURN_7777', 1.0000, 0.0000, 'EA', 70.0000, 0.0000),
    ('S00004', 10, 'PP-000003', 16.0000, 0.0000, 'HR', 75.0000, 0.0000),
    ('S00004', 20, 'FURN_8888', 10.0000, 0.0000, 'EA', 45.0000, 0.0000),
    ('S00004', 30, 'FURN_6741', 3.0000, 0.0000, 'EA', 150.0000, 0.0000),
    ('S00004', 40, 'FURN_7777', 2.0000, 0.0000, 'EA', 70.0000, 0.0000),
    ('S00005', 10, 'FURN_8888', 1.0000, 0.0000, 'EA', 405.0000, 0.0000),
    ('S00006', 10, 'FURN_0096', 1.0000, 0.0000, 'EA', 750.0000, 0.0000),
    ('S00007', 10, 'FURN_6666', 5.0000, 0.0000, 'EA', 295.0000, 0.0000),
    ('S00007', 20, 'FURN_8999', 1.0000, 0.0000, 'EA', 173.0000, 0.0000),
    ('S00007', 30, 'FURN_8888', 1.0000, 0.0000, 'EA', 40.0000, 0.0000),
    ('S00007', 40, 'FURN_7777', 1.0000, 0.0000, 'EA', 18.0000, 0.0000),
    ('S00008', 10, 'FURN_8855', 2.0000, 0.0000, 'EA', 110.5000, 0.0000),
    ('S00008', 20, 'FURN_0269', 2.0000, 0.0000, 'EA', 120.5000, 0.0000),
    ('S00009', 10, 'FURN_8855', 3.0000, 0.0000, 'EA', 97.5000, 0.0000),
    ('S00009', 20, 'FURN_0269', 3.0000, 0.0000, 'EA', 120.5000, 0.0000),
    ('S00010', 10, 'FURN_6666', 2.0000, 0.0000, 'EA', 255.0000, 0.0000),
    ('S00010', 20, 'FURN_0269', 2.0000, 0.0000, 'EA', 120.5000, 0.0000),
    ('S00011', 10, 'FURN_6666', 3.0000, 0.0000, 'EA', 245.0000, 0.0000),
    ('S00011', 20, 'FURN_0269', 3.0000, 0.0000, 'EA', 120.5000, 0.0000),
    ('S00012', 10, 'FURN_6666', 1.0000, 0.0000, 'EA', 315.0000, 0.0000),
    ('S00012', 20, 'FURN_0269', 2.0000, 0.0000, 'EA', 120.5000, 0.0000),
    ('S00013', 10, 'FURN_6666', 1.0000, 0.0000, 'EA', 295.0000, 0.0000),
    ('S00013', 20, 'FURN_0269', 1.0000, 0.0000, 'EA', 120.5000, 0.0000),
    ('S00014', 10, 'FURN_6666', 4.0000, 0.0000, 'EA', 275.0000, 0.0000),
    ('S00014', 20, 'FURN_0269', 4.0000, 0.0000, 'EA', 120.5000, 0.0000),
    ('S00015', 10, 'FURN_6666', 4.0000, 0.0000, 'EA', 295.0000, 0.0000),
    ('S00015', 20, 'FURN_0269', 3.0000, 0.0000, 'EA', 120.5000, 0.0000),
    ('S00016', 10, 'FURN_6666', 3.0000, 0.0000, 'EA', 275.0000, 0.0000),
    ('S00016', 20, 'FURN_0269', 3.0000, 0.0000, 'EA', 120.5000, 0.0000),
    ('S00017', 10, 'FURN_6666', 2.0000, 0.0000, 'EA', 355.0000, 0.0000),
    ('S00017', 20, 'FURN_0269', 2.0000, 0.0000, 'EA', 120.5000, 0.0000),
    ('S00018', 10, 'FURN_6666', 2.0000, 0.0000, 'EA', 295.0000, 0.0000),
    ('S00018', 20, 'FURN_0269', 2.0000, 0.0000, 'EA', 120.5000, 0.0000),
    ('S00019', 10, 'FURN_6666', 3.0000, 0.0000, 'EA', 295.0000, 0.0000),
    ('S00019', 20, 'FURN_8888', 5.0000, 0.0000, 'EA', 145.0000, 0.0000),
    ('S00019', 30, 'FURN_7777', 2.0000, 0.0000, 'EA', 65.0000, 0.0000),
    ('S00020', 10, 'PP-000003', 24.0000, 0.0000, 'HR', 75.0000, 0.0000),
    ('S00020', 20, 'PP-000004', 30.0000, 0.0000, 'HR', 38.2500, 0.0000),
    ('S00021', 10, 'FURN_6666', 5.0000, 0.0000, 'EA', 295.0000, 0.0000),
    ('S00021', 20, 'E-COM11', 5.0000, 0.0000, 'EA', 140.0000, 0.0000),
    ('S00022', 10, 'FURN_6666', 5.0000, 0.0000, 'EA', 295.0000, 0.0000),
    ('S00023', 10, 'FURN_6666', 10.0000, 0.0000, 'EA', 295.0000, 0.0000),
    ('S00023', 20, 'E-COM11', 10.0000, 0.0000, 'EA', 140.0000, 0.0000),
    ('S00024', 10, 'E-COM06', 10.0000, 0.0000, 'EA', 199.0000, 0.0000);

INSERT INTO PROD_ORDER (ORDER_NO, ITEM_NO, BOM_ALT, QTY_ORDERED, QTY_COMPLETED, QTY_SCRAPPED, UOM_CODE, STATUS,
                        START_DATE, DUE_DATE, WC_CODE, LOT_NO) VALUES
    ('MO00000001', 'FURN_7800', '01', 3.0000, 0.0000, 0.0000, 'EA', 'R', '2026-11-27 00:59:11', '2026-12-07 00:59:11', 'ASSY1', ''),
    ('MO00000002', 'FURN_9666', '01', 1.0000, 0.0000, 0.0000, 'EA', 'O', '2026-11-28 00:59:00', '2026-11-28 01:59:00', 'ASSY1', ''),
    ('MO00000003', 'FURN_8522', '01', 1.0000, 0.0000, 0.0000, 'EA', 'R', '2026-11-27 00:59:12', '2026-11-27 01:59:12', 'ASSY1', ''),
    ('MO00000004', 'FURN_8855', '01', 5.0000, 5.0000, 0.0000, 'EA', 'C', '2026-11-27 00:59:13', '2026-11-27 00:59:14', '', '0000000000030'),
    ('MO00000005', 'FURN_8855', '01', 5.0000, 5.0000, 0.0000, 'EA', 'C', '2026-11-13 00:59:22', '2026-11-13 00:59:23', '', '0000000000030'),
    ('MO00000006', 'FURN_8855', '01', 3.0000, 3.0000, 0.0000, 'EA', 'C', '2026-11-20 00:59:23', '2026-11-20 00:59:23', '', '0000000000030'),
    ('MO00000007', 'FURN_7800', '01', 2.0000, 2.0000, 0.0000, 'EA', 'C', '2026-11-27 01:01:20', '2026-11-27 01:01:21', '', '');

INSERT INTO INV_TRANS (TRANS_NO, TRANS_DATE, TRANS_TYPE, ITEM_NO, WHSE_CODE, QTY, UOM_CODE, LOT_NO, REF_NO) VALUES
    (1, '2026-11-13 00:59:23', 'PR', 'FURN_8855', 'WH', 5.0000, 'EA', '0000000000030', 'MO00000005'),
    (2, '2026-11-20 00:59:23', 'PR', 'FURN_8855', 'WH', 3.0000, 'EA', '0000000000030', 'MO00000006'),
    (3, '2026-11-27 00:58:58', 'AJ', 'FURN_0789', 'WH', 16.0000, 'EA', '', ''),
    (4, '2026-11-27 00:58:58', 'AJ', 'E-COM08', 'WH', 18.0000, 'EA', '', ''),
    (5, '2026-11-27 00:58:58', 'AJ', 'E-COM07', 'WH', 500.0000, 'EA', '', ''),
    (6, '2026-11-27 00:58:58', 'AJ', 'E-COM10', 'WH', 22.0000, 'EA', '', ''),
    (7, '2026-11-27 00:58:58', 'AJ', 'E-COM11', 'WH', 33.0000, 'EA', '', ''),
    (8, '2026-11-27 00:58:58', 'AJ', 'E-COM12', 'WH', 26.0000, 'EA', '', ''),
    (9, '2026-11-27 00:58:58', 'AJ', 'E-COM13', 'WH', 30.0000, 'EA', '', ''),
    (10, '2026-11-27 00:58:58', 'AJ', 'FURN_0096', 'WH', 45.0000, 'EA', '', ''),
    (11, '2026-11-27 00:58:58', 'AJ', 'FURN_0097', 'WH', 50.0000, 'EA', '', ''),
    (12, '2026-11-27 00:58:58', 'AJ', 'FURN_0098', 'WH', 55.0000, 'EA', '', ''),
    (13, '2026-11-27 00:58:58', 'AJ', 'FURN_0269', 'WH', 10.0000, 'EA', '', ''),
    (14, '2026-11-27 00:58:58', 'AJ', 'FURN_1118', 'WH', 2.0000, 'EA', '', ''),
    (15, '2026-11-27 00:58:58', 'AJ', 'FURN_8855', 'WH', 80.0000, 'EA', '0000000000029', ''),
    (16, '2026-11-27 00:58:58', 'AJ', 'FURN_7800', 'WH', 60.0000, 'EA', '', ''),
    (17, '2026-11-27 00:58:58', 'AJ', 'FURN_6666', 'WH', 16.0000, 'EA', '', ''),
    (18, '2026-11-27 00:59:00', 'AJ', 'E-COM07', 'CHIC1', 200.0000, 'EA', '', ''),
    (19, '2026-11-27 00:59:00', 'AJ', 'FURN_5555', 'WH', 50.0000, 'EA', 'CM-BOX-00001', ''),
    (20, '2026-11-27 00:59:00', 'AJ', 'FURN_5555', 'WH', 40.0000, 'EA', 'CM-BOX-00002', ''),
    (21, '2026-11-27 00:59:13', 'AJ', 'FURN_8855', 'WH', 50.0000, 'EA', '0000000000030', ''),
    (22, '2026-11-27 00:59:13', 'AJ', 'FURN_8855', 'WH', 40.0000, 'EA', '0000000000031', ''),
    (23, '2026-11-27 00:59:13', 'AJ', 'FURN_2100', 'WH', 50.0000, 'EA', '0000000010001', ''),
    (24, '2026-11-27 00:59:13', 'AJ', 'FURN_5623', 'WH', 50.0000, 'EA', '0000000020045', ''),
    (25, '2026-11-27 00:59:13', 'AJ', 'FURN_7023', 'WH', 50.0000, 'EA', '', ''),
    (26, '2026-11-27 00:59:13', 'AJ', 'FURN_7111', 'WH', 20.0000, 'EA', '', ''),
    (27, '2026-11-27 00:59:13', 'AJ', 'FURN_8111', 'WH', 30.0000, 'EA', '', ''),
    (28, '2026-11-27 00:59:14', 'PI', 'FURN_2100', 'WH', -5.0000, 'EA', '0000000010001', 'MO00000004'),
    (29, '2026-11-27 00:59:14', 'PI', 'FURN_5623', 'WH', -5.0000, 'EA', '0000000020045', 'MO00000004'),
    (30, '2026-11-27 00:59:14', 'PR', 'FURN_8855', 'WH', 5.0000, 'EA', '0000000000030', 'MO00000004'),
    (31, '2026-11-27 00:59:16', 'AJ', 'FURN_8522', 'WH', 1.0000, 'EA', 'TT001', ''),
    (32, '2026-11-27 00:59:16', 'AJ', 'FURN_8522', 'WH', 1.0000, 'EA', 'TT002', ''),
    (33, '2026-11-27 00:59:16', 'AJ', 'FURN_8522', 'WH', 1.0000, 'EA', 'TT003', ''),
    (34, '2026-11-27 00:59:16', 'AJ', 'FURN_8522', 'WH', 1.0000, 'EA', 'TT004', ''),
    (35, '2026-11-27 00:59:16', 'AJ', 'FURN_8522', 'WH', 1.0000, 'EA', 'TT005', ''),
    (36, '2026-11-27 00:59:16', 'AJ', 'FURN_9666', 'WH', 1.0000, 'EA', 'T0001', ''),
    (37, '2026-11-27 00:59:34', 'AJ', 'DESK0005', 'WH', 65.0000, 'EA', '', ''),
    (38, '2026-11-27 00:59:34', 'AJ', 'DESK0006', 'WH', 70.0000, 'EA', '', ''),
    (39, '2026-11-27 01:01:21', 'PI', 'FURN_0269', 'WH', -2.0000, 'EA', '', 'MO00000007'),
    (40, '2026-11-27 01:01:21', 'PR', 'FURN_7800', 'WH', 2.0000, 'EA', '', 'MO00000007'),
    (41, '2026-11-27 01:01:21', 'PI', 'FURN_1118', 'WH', -2.0000, 'EA', '', 'MO00000007'),
    (42, '2026-11-27 01:01:21', 'PI', 'FURN_8900', 'WH', -2.0000, 'EA', '', 'MO00000007');

INSERT INTO LOT_MASTER (ITEM_NO, LOT_NO, QTY_ON_HAND, STATUS, CREATED_DATE, EXPIRY_DATE) VALUES
    ('FURN_2100', '0000000010001', 45.0000, 'A', '2026-11-27 00:59:05', NULL),
    ('FURN_5555', 'CM-BOX-00001', 50.0000, 'A', '2026-11-27 00:58:50', NULL),
    ('FURN_5555', 'CM-BOX-00002', 40.0000, 'A', '2026-11-27 00:58:50', NULL),
    ('FURN_5555', 'LOT-000001', 0.0000, 'A', '2026-11-27 00:58:50', NULL),
    ('FURN_5623', '0000000020045', 45.0000, 'A', '2026-11-27 00:59:05', NULL),
    ('FURN_8522', 'TT001', 1.0000, 'A', '2026-11-27 00:59:05', NULL),
    ('FURN_8522', 'TT002', 1.0000, 'A', '2026-11-27 00:59:05', NULL),
    ('FURN_8522', 'TT003', 1.0000, 'A', '2026-11-27 00:59:05', NULL),
    ('FURN_8522', 'TT004', 1.0000, 'A', '2026-11-27 00:59:05', NULL),
    ('FURN_8522', 'TT005', 1.0000, 'A', '2026-11-27 00:59:05', NULL),
    ('FURN_8855', '0000000000029', 80.0000, 'A', '2026-11-27 00:58:50', NULL),
    ('FURN_8855', '0000000000030', 63.0000, 'A', '2026-11-27 00:59:05', NULL),
    ('FURN_8855', '0000000000031', 40.0000, 'A', '2026-11-27 00:59:05', NULL),
    ('FURN_9666', 'T0001', 1.0000, 'A', '2026-11-27 00:59:05', NULL);

-- Written by hand (no Odoo counterpart): the lab's checks of the drawers produced into lot
-- 0000000000030 and of the table top and table serials; TT003 failed flatness and passed
-- after rework (sample 2).
INSERT INTO QUALITY_RESULT (ITEM_NO, LOT_NO, TEST_CODE, SAMPLE_NO, ORDER_NO, RESULT_VALUE, RESULT_UOM, RESULT_FLAG,
                            TESTED_AT, INSPECTOR) VALUES
    ('FURN_8522', 'TT001', 'FLAT', 1, '', 0.4000, 'MM', 'P', '2026-11-27 08:12:00', 'QC02'),
    ('FURN_8522', 'TT002', 'FLAT', 1, '', 0.7000, 'MM', 'P', '2026-11-27 08:14:00', 'QC02'),
    ('FURN_8522', 'TT003', 'FLAT', 1, '', 1.8000, 'MM', 'F', '2026-11-27 08:16:00', 'QC02'),
    ('FURN_8522', 'TT003', 'FLAT', 2, '', 0.6000, 'MM', 'P', '2026-11-27 10:41:00', 'QC01'),
    ('FURN_8522', 'TT004', 'FLAT', 1, '', 0.3000, 'MM', 'P', '2026-11-27 08:18:00', 'QC02'),
    ('FURN_8522', 'TT005', 'FLAT', 1, '', 0.9000, 'MM', 'P', '2026-11-27 08:20:00', 'QC02'),
    ('FURN_8855', '0000000000030', 'DIM', 1, 'MO00000005', 450.2000, 'MM', 'P', '2026-11-13 08:20:00', 'QC01'),
    ('FURN_8855', '0000000000030', 'DIM', 2, 'MO00000006', 449.6000, 'MM', 'P', '2026-11-20 08:07:00', 'QC02'),
    ('FURN_8855', '0000000000030', 'DIM', 3, 'MO00000004', 450.9000, 'MM', 'P', '2026-11-27 08:31:00', 'QC01'),
    ('FURN_8855', '0000000000030', 'VISUAL', 1, 'MO00000005', NULL, '', 'P', '2026-11-13 08:15:00', 'QC01'),
    ('FURN_8855', '0000000000030', 'VISUAL', 2, 'MO00000006', NULL, '', 'P', '2026-11-20 08:05:00', 'QC02'),
    ('FURN_8855', '0000000000030', 'VISUAL', 3, 'MO00000004', NULL, '', 'P', '2026-11-27 08:29:00', 'QC01'),
    ('FURN_9666', 'T0001', 'LOAD', 1, '', 150.0000, 'KG', 'P', '2026-11-27 09:02:00', 'QC01'),
    ('FURN_9666', 'T0001', 'VISUAL', 1, '', NULL, '', 'P', '2026-11-27 08:58:00', 'QC01');

COMMIT;
