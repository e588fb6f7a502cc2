-- The demo legacy ERP: schema, SQL Server (T-SQL) dialect.
--
-- UNTESTED HERE: no SQL Server runs on millrace's dev and CI machines. This file was written by
-- hand to match ../mariadb/schema.sql column for column (read that file's header for what the
-- schema models and why: 1990s natural CHAR keys, no foreign keys, one-letter status codes,
-- DECIMAL(18,4), local times). Run it against a SQL Server 2016 or later before relying on
-- it, and fix what fails here, not in a copy.
--
-- Differences from the MariaDB version, all on purpose:
--   * Every table except QUALITY_RESULT has RV ROWVERSION (the `rowversion` strategy:
--     RV > @last AND RV < MIN_ACTIVE_ROWVERSION()), indexed.
--   * LAST_UPD DATETIME2(6) is set by its DEFAULT on INSERT only. SQL Server has no
--     ON UPDATE CURRENT_TIMESTAMP, and the ERP application itself sets LAST_UPD on every UPDATE
--     (so must millrace's sink when it writes here). No trigger does it: a trigger's second
--     UPDATE would bump RV twice, and being a statement of its own it may be recorded in
--     change tracking without the writer's CHANGE_TRACKING_CONTEXT, which is how millrace
--     recognises its own writes (not verified either way).
--   * Change tracking is on for the database (2 days' retention) and for every table, with
--     snapshot isolation allowed so a poller can read CHANGETABLE and the rows consistently.
--     That includes QUALITY_RESULT: it has no change column here either, but on SQL Server
--     change tracking can still find its changes (in MariaDB only `hashdiff` can).
--   * Free text is NVARCHAR, codes are CHAR (SQL Server returns CHAR values blank-padded to
--     their width, MariaDB trimmed). Business dates are DATETIME2(0) (whole seconds).
--   * Constraints are named (PK_<table>), indexes as in MariaDB.
--
-- Load into an empty database (the change tracking part needs ALTER on the database):
--   CREATE DATABASE legacy_demo;   -- the server's default collation, typically *_CI_AS
--   sqlcmd -b -d legacy_demo -i schema.sql
-- Then the demo data: sqlcmd -b -d legacy_demo -i demo-data.sql (generated from
-- ../mariadb/demo-data.sql; docker/mssql-init.sh in the repository root loads both).

SET ANSI_NULLS ON;
SET QUOTED_IDENTIFIER ON;
SET ANSI_PADDING ON;
GO

-- Units of measure. FACTOR = how many BASE_UOM one unit is. STATUS: 'A' active, 'I' inactive.
CREATE TABLE dbo.UOM (
    UOM_CODE     CHAR(4)        NOT NULL,
    DESCRIPTION  NVARCHAR(30)   NOT NULL,
    BASE_UOM     CHAR(4)        NOT NULL,
    FACTOR       DECIMAL(18,8)  NOT NULL DEFAULT 1,
    STATUS       CHAR(1)        NOT NULL DEFAULT 'A',
    LAST_UPD     DATETIME2(6)   NOT NULL DEFAULT SYSDATETIME(),
    RV           ROWVERSION     NOT NULL,
    CONSTRAINT PK_UOM PRIMARY KEY CLUSTERED (UOM_CODE)
);
CREATE INDEX IX_UOM_LAST_UPD ON dbo.UOM (LAST_UPD);
CREATE UNIQUE INDEX IX_UOM_RV ON dbo.UOM (RV);
GO

-- Items. ITEM_TYPE: 'M' manufactured, 'P' purchased, 'S' service. LOT_CONTROL: 'N' none,
-- 'L' lot, 'S' serial. STATUS: 'A' active, 'I' inactive.
CREATE TABLE dbo.ITEM_MASTER (
    ITEM_NO      CHAR(18)       NOT NULL,
    DESCRIPTION  NVARCHAR(40)   NOT NULL,
    UOM_CODE     CHAR(4)        NOT NULL,
    ITEM_TYPE    CHAR(1)        NOT NULL DEFAULT 'P',
    LOT_CONTROL  CHAR(1)        NOT NULL DEFAULT 'N',
    STD_COST     DECIMAL(18,4)  NOT NULL DEFAULT 0,
    LIST_PRICE   DECIMAL(18,4)  NOT NULL DEFAULT 0,
    STATUS       CHAR(1)        NOT NULL DEFAULT 'A',
    LAST_UPD     DATETIME2(6)   NOT NULL DEFAULT SYSDATETIME(),
    RV           ROWVERSION     NOT NULL,
    CONSTRAINT PK_ITEM_MASTER PRIMARY KEY CLUSTERED (ITEM_NO)
);
CREATE INDEX IX_ITEM_MASTER_LAST_UPD ON dbo.ITEM_MASTER (LAST_UPD);
CREATE UNIQUE INDEX IX_ITEM_MASTER_RV ON dbo.ITEM_MASTER (RV);
GO

-- BOM headers: per parent item and alternate ('01' primary). BOM_TYPE: 'N' normal, 'K' kit.
-- STATUS: 'A' active, 'I' inactive.
CREATE TABLE dbo.BOM_HEADER (
    ITEM_NO      CHAR(18)       NOT NULL,
    BOM_ALT      CHAR(2)        NOT NULL,
    DESCRIPTION  NVARCHAR(40)   NOT NULL DEFAULT N'',
    BOM_TYPE     CHAR(1)        NOT NULL DEFAULT 'N',
    BASE_QTY     DECIMAL(18,4)  NOT NULL DEFAULT 1,
    UOM_CODE     CHAR(4)        NOT NULL,
    STATUS       CHAR(1)        NOT NULL DEFAULT 'A',
    LAST_UPD     DATETIME2(6)   NOT NULL DEFAULT SYSDATETIME(),
    RV           ROWVERSION     NOT NULL,
    CONSTRAINT PK_BOM_HEADER PRIMARY KEY CLUSTERED (ITEM_NO, BOM_ALT)
);
CREATE INDEX IX_BOM_HEADER_LAST_UPD ON dbo.BOM_HEADER (LAST_UPD);
CREATE UNIQUE INDEX IX_BOM_HEADER_RV ON dbo.BOM_HEADER (RV);
GO

-- BOM lines. ISSUE_METHOD: 'B' backflush, 'M' manual.
CREATE TABLE dbo.BOM_LINE (
    ITEM_NO      CHAR(18)       NOT NULL,
    BOM_ALT      CHAR(2)        NOT NULL,
    LINE_NO      SMALLINT       NOT NULL,
    COMP_ITEM_NO CHAR(18)       NOT NULL,
    QTY_PER      DECIMAL(18,4)  NOT NULL,
    UOM_CODE     CHAR(4)        NOT NULL,
    ISSUE_METHOD CHAR(1)        NOT NULL DEFAULT 'B',
    LAST_UPD     DATETIME2(6)   NOT NULL DEFAULT SYSDATETIME(),
    RV           ROWVERSION     NOT NULL,
    CONSTRAINT PK_BOM_LINE PRIMARY KEY CLUSTERED (ITEM_NO, BOM_ALT, LINE_NO)
);
CREATE INDEX IX_BOM_LINE_LAST_UPD ON dbo.BOM_LINE (LAST_UPD);
CREATE UNIQUE INDEX IX_BOM_LINE_RV ON dbo.BOM_LINE (RV);
GO

-- Work centers. STATUS: 'A' active, 'B' blocked, 'I' inactive.
CREATE TABLE dbo.WORK_CENTER (
    WC_CODE        CHAR(6)        NOT NULL,
    DESCRIPTION    NVARCHAR(40)   NOT NULL,
    STATUS         CHAR(1)        NOT NULL DEFAULT 'A',
    CAPACITY       DECIMAL(18,4)  NOT NULL DEFAULT 1,
    EFFICIENCY_PCT DECIMAL(18,4)  NOT NULL DEFAULT 100,
    COST_PER_HR    DECIMAL(18,4)  NOT NULL DEFAULT 0,
    LAST_UPD       DATETIME2(6)   NOT NULL DEFAULT SYSDATETIME(),
    RV             ROWVERSION     NOT NULL,
    CONSTRAINT PK_WORK_CENTER PRIMARY KEY CLUSTERED (WC_CODE)
);
CREATE INDEX IX_WORK_CENTER_LAST_UPD ON dbo.WORK_CENTER (LAST_UPD);
CREATE UNIQUE INDEX IX_WORK_CENTER_RV ON dbo.WORK_CENTER (RV);
GO

-- Sales order headers. STATUS: 'O' open, 'R' released, 'C' closed, 'X' cancelled.
CREATE TABLE dbo.SO_HEADER (
    ORDER_NO     CHAR(10)       NOT NULL,
    CUST_NO      CHAR(10)       NOT NULL,
    CUST_NAME    NVARCHAR(40)   NOT NULL DEFAULT N'',
    CUST_PO_REF  NVARCHAR(20)   NOT NULL DEFAULT N'',
    ORDER_DATE   DATETIME2(0)   NOT NULL,
    REQ_DATE     DATETIME2(0)   NULL,
    STATUS       CHAR(1)        NOT NULL DEFAULT 'O',
    ORDER_TOTAL  DECIMAL(18,4)  NOT NULL DEFAULT 0,
    WHSE_CODE    CHAR(6)        NOT NULL,
    LAST_UPD     DATETIME2(6)   NOT NULL DEFAULT SYSDATETIME(),
    RV           ROWVERSION     NOT NULL,
    CONSTRAINT PK_SO_HEADER PRIMARY KEY CLUSTERED (ORDER_NO)
);
CREATE INDEX IX_SO_HEADER_LAST_UPD ON dbo.SO_HEADER (LAST_UPD);
CREATE UNIQUE INDEX IX_SO_HEADER_RV ON dbo.SO_HEADER (RV);
GO

-- Sales order lines.
CREATE TABLE dbo.SO_LINE (
    ORDER_NO     CHAR(10)       NOT NULL,
    LINE_NO      SMALLINT       NOT NULL,
    ITEM_NO      CHAR(18)       NOT NULL,
    QTY_ORDERED  DECIMAL(18,4)  NOT NULL,
    QTY_SHIPPED  DECIMAL(18,4)  NOT NULL DEFAULT 0,
    UOM_CODE     CHAR(4)        NOT NULL,
    UNIT_PRICE   DECIMAL(18,4)  NOT NULL DEFAULT 0,
    DISCOUNT_PCT DECIMAL(18,4)  NOT NULL DEFAULT 0,
    LAST_UPD     DATETIME2(6)   NOT NULL DEFAULT SYSDATETIME(),
    RV           ROWVERSION     NOT NULL,
    CONSTRAINT PK_SO_LINE PRIMARY KEY CLUSTERED (ORDER_NO, LINE_NO)
);
CREATE INDEX IX_SO_LINE_LAST_UPD ON dbo.SO_LINE (LAST_UPD);
CREATE UNIQUE INDEX IX_SO_LINE_RV ON dbo.SO_LINE (RV);
GO

-- Production orders. STATUS: 'O' open, 'R' released, 'C' closed, 'X' cancelled.
CREATE TABLE dbo.PROD_ORDER (
    ORDER_NO      CHAR(12)       NOT NULL,
    ITEM_NO       CHAR(18)       NOT NULL,
    BOM_ALT       CHAR(2)        NOT NULL DEFAULT '01',
    QTY_ORDERED   DECIMAL(18,4)  NOT NULL,
    QTY_COMPLETED DECIMAL(18,4)  NOT NULL DEFAULT 0,
    QTY_SCRAPPED  DECIMAL(18,4)  NOT NULL DEFAULT 0,
    UOM_CODE      CHAR(4)        NOT NULL,
    STATUS        CHAR(1)        NOT NULL DEFAULT 'O',
    START_DATE    DATETIME2(0)   NULL,
    DUE_DATE      DATETIME2(0)   NULL,
    WC_CODE       CHAR(6)        NOT NULL DEFAULT '',
    LOT_NO        CHAR(20)       NOT NULL DEFAULT '',
    LAST_UPD      DATETIME2(6)   NOT NULL DEFAULT SYSDATETIME(),
    RV            ROWVERSION     NOT NULL,
    CONSTRAINT PK_PROD_ORDER PRIMARY KEY CLUSTERED (ORDER_NO)
);
CREATE INDEX IX_PROD_ORDER_LAST_UPD ON dbo.PROD_ORDER (LAST_UPD);
CREATE UNIQUE INDEX IX_PROD_ORDER_RV ON dbo.PROD_ORDER (RV);
GO

-- Inventory transactions (insert-only ledger; QTY signed). TRANS_TYPE: 'AJ' adjustment,
-- 'RC' receipt, 'SH' shipment, 'PI' issue to production, 'PR' receipt from production,
-- 'SC' scrap.
CREATE TABLE dbo.INV_TRANS (
    TRANS_NO     INT            NOT NULL,
    TRANS_DATE   DATETIME2(0)   NOT NULL,
    TRANS_TYPE   CHAR(2)        NOT NULL,
    ITEM_NO      CHAR(18)       NOT NULL,
    WHSE_CODE    CHAR(6)        NOT NULL,
    QTY          DECIMAL(18,4)  NOT NULL,
    UOM_CODE     CHAR(4)        NOT NULL,
    LOT_NO       CHAR(20)       NOT NULL DEFAULT '',
    REF_NO       CHAR(12)       NOT NULL DEFAULT '',
    LAST_UPD     DATETIME2(6)   NOT NULL DEFAULT SYSDATETIME(),
    RV           ROWVERSION     NOT NULL,
    CONSTRAINT PK_INV_TRANS PRIMARY KEY CLUSTERED (TRANS_NO)
);
CREATE INDEX IX_INV_TRANS_LAST_UPD ON dbo.INV_TRANS (LAST_UPD);
CREATE UNIQUE INDEX IX_INV_TRANS_RV ON dbo.INV_TRANS (RV);
GO

-- Lots and serial numbers. STATUS: 'A' available, 'Q' quarantine, 'H' hold, 'I' inactive.
CREATE TABLE dbo.LOT_MASTER (
    ITEM_NO      CHAR(18)       NOT NULL,
    LOT_NO       CHAR(20)       NOT NULL,
    QTY_ON_HAND  DECIMAL(18,4)  NOT NULL DEFAULT 0,
    STATUS       CHAR(1)        NOT NULL DEFAULT 'A',
    CREATED_DATE DATETIME2(0)   NOT NULL,
    EXPIRY_DATE  DATETIME2(0)   NULL,
    LAST_UPD     DATETIME2(6)   NOT NULL DEFAULT SYSDATETIME(),
    RV           ROWVERSION     NOT NULL,
    CONSTRAINT PK_LOT_MASTER PRIMARY KEY CLUSTERED (ITEM_NO, LOT_NO)
);
CREATE INDEX IX_LOT_MASTER_LAST_UPD ON dbo.LOT_MASTER (LAST_UPD);
CREATE UNIQUE INDEX IX_LOT_MASTER_RV ON dbo.LOT_MASTER (RV);
GO

-- Quality results: THE table without a change column (no LAST_UPD, no RV). RESULT_FLAG:
-- 'P' pass, 'F' fail.
CREATE TABLE dbo.QUALITY_RESULT (
    ITEM_NO      CHAR(18)       NOT NULL,
    LOT_NO       CHAR(20)       NOT NULL,
    TEST_CODE    CHAR(8)        NOT NULL,
    SAMPLE_NO    SMALLINT       NOT NULL,
    ORDER_NO     CHAR(12)       NOT NULL DEFAULT '',
    RESULT_VALUE DECIMAL(18,4)  NULL,
    RESULT_UOM   CHAR(4)        NOT NULL DEFAULT '',
    RESULT_FLAG  CHAR(1)        NOT NULL,
    TESTED_AT    DATETIME2(0)   NOT NULL,
    INSPECTOR    CHAR(8)        NOT NULL DEFAULT '',
    CONSTRAINT PK_QUALITY_RESULT PRIMARY KEY CLUSTERED (ITEM_NO, LOT_NO, TEST_CODE, SAMPLE_NO)
);
GO

-- ---- Change tracking (the `change_tracking` strategy) ---------------------------------------
-- Two days' retention: a poller that has been away longer finds its last version below
-- CHANGE_TRACKING_MIN_VALID_VERSION and must re-snapshot the table. Snapshot isolation lets it
-- read CHANGETABLE(CHANGES ...) and the current rows as of one moment. ALTER DATABASE may not
-- run inside a transaction; ALLOW_SNAPSHOT_ISOLATION waits for open transactions to end.
IF NOT EXISTS (SELECT 1 FROM sys.change_tracking_databases WHERE database_id = DB_ID())
    ALTER DATABASE CURRENT SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 2 DAYS, AUTO_CLEANUP = ON);
GO
ALTER DATABASE CURRENT SET ALLOW_SNAPSHOT_ISOLATION ON;
GO

-- TRACK_COLUMNS_UPDATED = OFF: millrace re-reads the whole row of each changed key anyway.
ALTER TABLE dbo.UOM            ENABLE CHANGE_TRACKING WITH (TRACK_COLUMNS_UPDATED = OFF);
ALTER TABLE dbo.ITEM_MASTER    ENABLE CHANGE_TRACKING WITH (TRACK_COLUMNS_UPDATED = OFF);
ALTER TABLE dbo.BOM_HEADER     ENABLE CHANGE_TRACKING WITH (TRACK_COLUMNS_UPDATED = OFF);
ALTER TABLE dbo.BOM_LINE       ENABLE CHANGE_TRACKING WITH (TRACK_COLUMNS_UPDATED = OFF);
ALTER TABLE dbo.WORK_CENTER    ENABLE CHANGE_TRACKING WITH (TRACK_COLUMNS_UPDATED = OFF);
ALTER TABLE dbo.SO_HEADER      ENABLE CHANGE_TRACKING WITH (TRACK_COLUMNS_UPDATED = OFF);
ALTER TABLE dbo.SO_LINE        ENABLE CHANGE_TRACKING WITH (TRACK_COLUMNS_UPDATED = OFF);
ALTER TABLE dbo.PROD_ORDER     ENABLE CHANGE_TRACKING WITH (TRACK_COLUMNS_UPDATED = OFF);
ALTER TABLE dbo.INV_TRANS      ENABLE CHANGE_TRACKING WITH (TRACK_COLUMNS_UPDATED = OFF);
ALTER TABLE dbo.LOT_MASTER     ENABLE CHANGE_TRACKING WITH (TRACK_COLUMNS_UPDATED = OFF);
ALTER TABLE dbo.QUALITY_RESULT ENABLE CHANGE_TRACKING WITH (TRACK_COLUMNS_UPDATED = OFF);
GO
