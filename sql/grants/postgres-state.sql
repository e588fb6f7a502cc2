-- Generated from the shipped mappings (mappings/) by `cargo test grants::tests::shipped_grants`
-- (MILLRACE_BLESS=1 rewrites it). For your own configuration, run
-- `millrace setup --print-sql --for odoo|state|erp`, which also knows what exists already.
-- The control state, in database "odoo" (PostgreSQL): a schema owned by millrace's role, where it
-- creates and migrates its own tables.
GRANT CONNECT ON DATABASE "odoo" TO "millrace";
CREATE SCHEMA IF NOT EXISTS millrace AUTHORIZATION "millrace";
ALTER SCHEMA millrace OWNER TO "millrace";
