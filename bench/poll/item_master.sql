-- The table bench/poll polls: shaped like the demo legacy ERP's ITEM_MASTER
-- (sql/legacy/mariadb/schema.sql) with two more columns: a space-padded CHAR natural key,
-- CHAR codes, blank rather than NULL for "none", DECIMAL(18,4) quantities and prices, a nullable
-- DATE, and LAST_UPD, a DATETIME(6) kept by the database, with the index a DBA adds for
-- "changed since" interfaces. 12 columns, about 110 bytes a row.
--
-- run.sh fills it with BENCH_ROWS rows in one INSERT … SELECT from the Sequence engine.

CREATE TABLE ITEM_MASTER (
    ITEM_NO      CHAR(18)       NOT NULL,
    DESCRIPTION  VARCHAR(40)    NOT NULL,
    UOM_CODE     CHAR(4)        NOT NULL,
    ITEM_TYPE    CHAR(1)        NOT NULL DEFAULT 'P',
    LOT_CONTROL  CHAR(1)        NOT NULL DEFAULT 'N',
    STD_COST     DECIMAL(18,4)  NOT NULL DEFAULT 0,
    LIST_PRICE   DECIMAL(18,4)  NOT NULL DEFAULT 0,
    QTY_ON_HAND  DECIMAL(18,4)  NOT NULL DEFAULT 0,
    WC_CODE      CHAR(6)        NOT NULL DEFAULT '',
    STATUS       CHAR(1)        NOT NULL DEFAULT 'A',
    CREATED      DATE           NULL,
    LAST_UPD     DATETIME(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (ITEM_NO),
    KEY IX_ITEM_MASTER_LAST_UPD (LAST_UPD)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
