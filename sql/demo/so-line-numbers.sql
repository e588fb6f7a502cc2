-- Prints the MariaDB statements that renumber the demo ERP's sales order lines (10, 20, … by
-- Odoo's sequence then id) to the Odoo line ids the shipped sales_order_line mapping keys on.
-- Used by scripts/demo.sh: psql -At -f this | mariadb.
SELECT 'UPDATE SO_LINE SET LINE_NO = LINE_NO + 20000;';
SELECT format('UPDATE SO_LINE SET LINE_NO = %s WHERE ORDER_NO = %L AND LINE_NO = %s;',
              l.id, o.name, 20000 + 10 * row_number() OVER (PARTITION BY l.order_id ORDER BY l.sequence, l.id))
  FROM sale_order_line l JOIN sale_order o ON o.id = l.order_id
 WHERE l.display_type IS NULL
 ORDER BY o.name, l.id;
