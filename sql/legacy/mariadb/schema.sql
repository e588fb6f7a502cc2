-- The demo legacy ERP: schema, MariaDB dialect.
--
-- millrace keeps Odoo in step with a "legacy ERP". This is a small but typical one, modelled on
-- the manufacturing/distribution packages of the 1990s (the kind first written for an AS/400,
-- Informix or early SQL Server, later ported to whatever database the customer ran) that many
-- plants still run today:
--
--   * UPPER-CASE table and column names, abbreviated (ITEM_NO, QTY_ORDERED, WC_CODE).
--   * Natural keys, not surrogate ids: fixed-width, space-padded CHAR codes (ITEM_NO CHAR(18),
--     the width SAP also chose for material numbers), composite where the business thinks so
--     (an order line is ORDER_NO + LINE_NO; a lot is ITEM_NO + LOT_NO). Line numbers step by 10
--     so that lines can be inserted between them.
--   * No foreign keys, no CHECK constraints. Integrity lives in the application (the original
--     databases had none to offer, and later ports kept it that way so that batch jobs and
--     imports could load in any order). So the data may have orphans and unknown codes, and a
--     sync must cope.
--   * Blank, not NULL, for "none" in code columns (WC_CODE = '' when no work center); NULL only
--     for dates that are not known yet.
--   * One-letter status codes, documented here and nowhere else (see each table).
--   * DECIMAL(18,4) for every quantity and price (exact; 4 places, whatever Odoo's precision).
--   * Local wall-clock DATETIMEs without time zone. The demo plant is in Europe/Brussels (the
--     Odoo demo users' time zone): where Odoo stores 2026-11-26 23:59:11 UTC, this ERP stores
--     2026-11-27 00:59:11 (UTC+1 in winter, UTC+2 in summer).
--   * A last-modified stamp on (almost) every table, LAST_UPD, kept by the database itself
--     (ON UPDATE CURRENT_TIMESTAMP(6)), so that batch interfaces can ask for "rows changed
--     since". It is set on INSERT and on every UPDATE that changes a value (an UPDATE that
--     changes nothing keeps it; an UPDATE that sets LAST_UPD explicitly wins). It says nothing
--     about deletes, and it is the time of the statement, not of the commit: a long
--     transaction can commit rows stamped earlier than rows already read. The index on it
--     is what a DBA adds for such an interface.
--   * Exactly one table without any change column: QUALITY_RESULT (written by a lab system
--     that never got one). Its changes can only be found by comparing contents.
--
-- The same schema in T-SQL is ../mssql/schema.sql (plus ROWVERSION columns and change
-- tracking there). demo-data.sql holds rows that mirror the Odoo 17 fixture in ../../odoo17/;
-- ../README.md explains how the two sides correspond.
--
-- Load into an empty database (scripts/load-legacy-fixture.sh does all of this):
--   CREATE DATABASE legacy_demo CHARACTER SET utf8mb4;
--   mariadb legacy_demo < schema.sql; mariadb legacy_demo < demo-data.sql
--
-- MariaDB returns CHAR values without their trailing spaces (unless sql_mode has
-- PAD_CHAR_TO_FULL_LENGTH) and compares them blank-padded ('EA' = 'EA  '); SQL Server returns
-- them padded. Readers must trim.

SET NAMES utf8mb4;

-- Units of measure. FACTOR = how many BASE_UOM one unit is (1 DZ = 12 EA; 1 HR = 0.125 DAY);
-- BASE_UOM is the reference unit of the unit's class (count, time, length, area, volume,
-- weight). FACTOR has 8 places, since conversion factors need more than 4 (1 OZ = 0.02834949
-- KG). STATUS: 'A' active, 'I' inactive.
CREATE TABLE UOM (
    UOM_CODE     CHAR(4)        NOT NULL,
    DESCRIPTION  VARCHAR(30)    NOT NULL,
    BASE_UOM     CHAR(4)        NOT NULL,
    FACTOR       DECIMAL(18,8)  NOT NULL DEFAULT 1,
    STATUS       CHAR(1)        NOT NULL DEFAULT 'A',
    LAST_UPD     DATETIME(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (UOM_CODE),
    KEY IX_UOM_LAST_UPD (LAST_UPD)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- The item (part, product) master. ITEM_TYPE: 'M' manufactured (has a BOM), 'P' purchased,
-- 'S' service. LOT_CONTROL: 'N' none, 'L' lot-controlled, 'S' serial-controlled. STD_COST:
-- standard cost per UOM_CODE; LIST_PRICE: sales list price. STATUS: 'A' active, 'I' inactive
-- (obsolete items are never deleted: history refers to them).
CREATE TABLE ITEM_MASTER (
    ITEM_NO      CHAR(18)       NOT NULL,
    DESCRIPTION  VARCHAR(40)    NOT NULL,
    UOM_CODE     CHAR(4)        NOT NULL,
    ITEM_TYPE    CHAR(1)        NOT NULL DEFAULT 'P',
    LOT_CONTROL  CHAR(1)        NOT NULL DEFAULT 'N',
    STD_COST     DECIMAL(18,4)  NOT NULL DEFAULT 0,
    LIST_PRICE   DECIMAL(18,4)  NOT NULL DEFAULT 0,
    STATUS       CHAR(1)        NOT NULL DEFAULT 'A',
    LAST_UPD     DATETIME(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (ITEM_NO),
    KEY IX_ITEM_MASTER_LAST_UPD (LAST_UPD)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Bill of materials, header: one per parent item and alternate (BOM_ALT '01' is the primary
-- one). DESCRIPTION: free text (the Odoo BOM reference). BOM_TYPE: 'N' normal (build the
-- parent), 'K' kit (phantom: sold/issued as its components). BASE_QTY: the parent quantity the
-- lines are for. STATUS: 'A' active, 'I' inactive.
CREATE TABLE BOM_HEADER (
    ITEM_NO      CHAR(18)       NOT NULL,
    BOM_ALT      CHAR(2)        NOT NULL,
    DESCRIPTION  VARCHAR(40)    NOT NULL DEFAULT '',
    BOM_TYPE     CHAR(1)        NOT NULL DEFAULT 'N',
    BASE_QTY     DECIMAL(18,4)  NOT NULL DEFAULT 1,
    UOM_CODE     CHAR(4)        NOT NULL,
    STATUS       CHAR(1)        NOT NULL DEFAULT 'A',
    LAST_UPD     DATETIME(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (ITEM_NO, BOM_ALT),
    KEY IX_BOM_HEADER_LAST_UPD (LAST_UPD)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Bill of materials, lines: QTY_PER of COMP_ITEM_NO per BASE_QTY of the parent.
-- ISSUE_METHOD: 'B' backflushed (issued automatically when the order reports production),
-- 'M' manual issue.
CREATE TABLE BOM_LINE (
    ITEM_NO      CHAR(18)       NOT NULL,
    BOM_ALT      CHAR(2)        NOT NULL,
    LINE_NO      SMALLINT       NOT NULL,
    COMP_ITEM_NO CHAR(18)       NOT NULL,
    QTY_PER      DECIMAL(18,4)  NOT NULL,
    UOM_CODE     CHAR(4)        NOT NULL,
    ISSUE_METHOD CHAR(1)        NOT NULL DEFAULT 'B',
    LAST_UPD     DATETIME(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (ITEM_NO, BOM_ALT, LINE_NO),
    KEY IX_BOM_LINE_LAST_UPD (LAST_UPD)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Work centers (machines, lines, stations). CAPACITY: units worked in parallel;
-- EFFICIENCY_PCT: 100 = standard times hold; COST_PER_HR: hourly rate. STATUS: 'A' active,
-- 'B' blocked (down), 'I' inactive.
CREATE TABLE WORK_CENTER (
    WC_CODE        CHAR(6)        NOT NULL,
    DESCRIPTION    VARCHAR(40)    NOT NULL,
    STATUS         CHAR(1)        NOT NULL DEFAULT 'A',
    CAPACITY       DECIMAL(18,4)  NOT NULL DEFAULT 1,
    EFFICIENCY_PCT DECIMAL(18,4)  NOT NULL DEFAULT 100,
    COST_PER_HR    DECIMAL(18,4)  NOT NULL DEFAULT 0,
    LAST_UPD       DATETIME(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (WC_CODE),
    KEY IX_WORK_CENTER_LAST_UPD (LAST_UPD)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Sales orders, header. There is no customer table in this demo: CUST_NO is the customer's
-- code and CUST_NAME a copy of its name taken when the order was entered (1990s style).
-- CUST_PO_REF: the customer's own order number. REQ_DATE: requested ship date (NULL: none).
-- ORDER_TOTAL: sum of the lines before tax. WHSE_CODE: shipping warehouse.
-- STATUS: 'O' open (entered/quoted, not released), 'R' released (confirmed, may ship),
-- 'C' closed (fully shipped), 'X' cancelled.
CREATE TABLE SO_HEADER (
    ORDER_NO     CHAR(10)       NOT NULL,
    CUST_NO      CHAR(10)       NOT NULL,
    CUST_NAME    VARCHAR(40)    NOT NULL DEFAULT '',
    CUST_PO_REF  VARCHAR(20)    NOT NULL DEFAULT '',
    ORDER_DATE   DATETIME       NOT NULL,
    REQ_DATE     DATETIME       NULL,
    STATUS       CHAR(1)        NOT NULL DEFAULT 'O',
    ORDER_TOTAL  DECIMAL(18,4)  NOT NULL DEFAULT 0,
    WHSE_CODE    CHAR(6)        NOT NULL,
    LAST_UPD     DATETIME(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (ORDER_NO),
    KEY IX_SO_HEADER_LAST_UPD (LAST_UPD)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Sales order lines. Quantities in the line's UOM_CODE; UNIT_PRICE per that unit;
-- DISCOUNT_PCT 0-100.
CREATE TABLE SO_LINE (
    ORDER_NO     CHAR(10)       NOT NULL,
    LINE_NO      SMALLINT       NOT NULL,
    ITEM_NO      CHAR(18)       NOT NULL,
    QTY_ORDERED  DECIMAL(18,4)  NOT NULL,
    QTY_SHIPPED  DECIMAL(18,4)  NOT NULL DEFAULT 0,
    UOM_CODE     CHAR(4)        NOT NULL,
    UNIT_PRICE   DECIMAL(18,4)  NOT NULL DEFAULT 0,
    DISCOUNT_PCT DECIMAL(18,4)  NOT NULL DEFAULT 0,
    LAST_UPD     DATETIME(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (ORDER_NO, LINE_NO),
    KEY IX_SO_LINE_LAST_UPD (LAST_UPD)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Production (shop) orders: make QTY_ORDERED of ITEM_NO by BOM alternate BOM_ALT at work
-- center WC_CODE ('' = not routed). The shop floor reports QTY_COMPLETED and QTY_SCRAPPED.
-- LOT_NO: the lot being produced ('' = none). START_DATE / DUE_DATE: planned (actual, once
-- closed). STATUS: 'O' open (planned, not released), 'R' released to the floor, 'C' closed
-- (completed), 'X' cancelled.
CREATE TABLE PROD_ORDER (
    ORDER_NO      CHAR(12)       NOT NULL,
    ITEM_NO       CHAR(18)       NOT NULL,
    BOM_ALT       CHAR(2)        NOT NULL DEFAULT '01',
    QTY_ORDERED   DECIMAL(18,4)  NOT NULL,
    QTY_COMPLETED DECIMAL(18,4)  NOT NULL DEFAULT 0,
    QTY_SCRAPPED  DECIMAL(18,4)  NOT NULL DEFAULT 0,
    UOM_CODE      CHAR(4)        NOT NULL,
    STATUS        CHAR(1)        NOT NULL DEFAULT 'O',
    START_DATE    DATETIME       NULL,
    DUE_DATE      DATETIME       NULL,
    WC_CODE       CHAR(6)        NOT NULL DEFAULT '',
    LOT_NO        CHAR(20)       NOT NULL DEFAULT '',
    LAST_UPD      DATETIME(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (ORDER_NO),
    KEY IX_PROD_ORDER_LAST_UPD (LAST_UPD)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Inventory transactions: the stock ledger, insert-only in normal use (corrections are new
-- transactions). TRANS_NO comes from the ERP's own counter, not from the database.
-- QTY is signed: + into WHSE_CODE, - out of it. TRANS_TYPE: 'AJ' adjustment (count),
-- 'RC' purchase receipt, 'SH' sales shipment, 'PI' issue to production, 'PR' receipt from
-- production, 'SC' scrap. REF_NO: the order behind it ('' = none); LOT_NO '' = not lot
-- controlled.
CREATE TABLE INV_TRANS (
    TRANS_NO     INT            NOT NULL,
    TRANS_DATE   DATETIME       NOT NULL,
    TRANS_TYPE   CHAR(2)        NOT NULL,
    ITEM_NO      CHAR(18)       NOT NULL,
    WHSE_CODE    CHAR(6)        NOT NULL,
    QTY          DECIMAL(18,4)  NOT NULL,
    UOM_CODE     CHAR(4)        NOT NULL,
    LOT_NO       CHAR(20)       NOT NULL DEFAULT '',
    REF_NO       CHAR(12)       NOT NULL DEFAULT '',
    LAST_UPD     DATETIME(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (TRANS_NO),
    KEY IX_INV_TRANS_LAST_UPD (LAST_UPD)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Lots and serial numbers (a serial number is a lot of one). QTY_ON_HAND: across all
-- warehouses, kept by the ERP from INV_TRANS. STATUS: 'A' available, 'Q' in quarantine
-- (awaiting QUALITY_RESULT), 'H' on hold (rejected), 'I' inactive (used up, archived).
CREATE TABLE LOT_MASTER (
    ITEM_NO      CHAR(18)       NOT NULL,
    LOT_NO       CHAR(20)       NOT NULL,
    QTY_ON_HAND  DECIMAL(18,4)  NOT NULL DEFAULT 0,
    STATUS       CHAR(1)        NOT NULL DEFAULT 'A',
    CREATED_DATE DATETIME       NOT NULL,
    EXPIRY_DATE  DATETIME       NULL,
    LAST_UPD     DATETIME(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (ITEM_NO, LOT_NO),
    KEY IX_LOT_MASTER_LAST_UPD (LAST_UPD)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Quality inspection results, written by the lab's own system: one row per test per sample of
-- a lot. THE table without a change column (no LAST_UPD, no ROWVERSION on SQL Server): rows
-- are updated in place when a test is repeated and deleted when a sample is voided, and only a
-- comparison of contents shows it. RESULT_VALUE in RESULT_UOM (NULL and '' for pass/fail-only
-- tests). RESULT_FLAG: 'P' pass, 'F' fail. ORDER_NO: the production order ('' = incoming or
-- stock sample). INSPECTOR: the inspector's code.
CREATE TABLE QUALITY_RESULT (
    ITEM_NO      CHAR(18)       NOT NULL,
    LOT_NO       CHAR(20)       NOT NULL,
    TEST_CODE    CHAR(8)        NOT NULL,
    SAMPLE_NO    SMALLINT       NOT NULL,
    ORDER_NO     CHAR(12)       NOT NULL DEFAULT '',
    RESULT_VALUE DECIMAL(18,4)  NULL,
    RESULT_UOM   CHAR(4)        NOT NULL DEFAULT '',
    RESULT_FLAG  CHAR(1)        NOT NULL,
    TESTED_AT    DATETIME       NOT NULL,
    INSPECTOR    CHAR(8)        NOT NULL DEFAULT '',
    PRIMARY KEY (ITEM_NO, LOT_NO, TEST_CODE, SAMPLE_NO)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
