//! The T-SQL millrace writes itself: `?` placeholders rewritten as `@P1…`, quoting, and the
//! change-tracking context its writes carry.

use crate::erp::Dialect;
use crate::model::Value;

pub fn quote(ident: &str) -> String {
    Dialect::MsSql.quote(ident)
}

pub fn quote_table(table: &str) -> String {
    Dialect::MsSql.quote_table(table)
}

/// Rewrites ODBC-style `?` placeholders into tiberius's `@P1, @P2, …`, leaving alone any `?`
/// inside a string literal (`'…'`, `N'…'`, with `''` escapes), a bracketed identifier (`[…]`,
/// with `]]`), a double-quoted identifier, and `--` or (nested) `/* */` comments. Returns the SQL
/// and how many placeholders it has.
pub fn translate_placeholders(sql: &str) -> (String, usize) {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Code,
        Text,
        Bracket,
        Quoted,
        LineComment,
        BlockComment(u32),
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut count = 0;
    let mut state = State::Code;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        // The closing character of a quoted run, doubled, stands for itself and keeps the run open.
        let closes = |close: char, chars: &mut std::iter::Peekable<std::str::Chars<'_>>, out: &mut String| {
            if chars.peek() == Some(&close) {
                out.push(close);
                chars.next();
                false
            } else {
                true
            }
        };
        match state {
            State::Code => match c {
                '?' => {
                    count += 1;
                    out.push_str("@P");
                    out.push_str(&count.to_string());
                    continue;
                }
                '\'' => state = State::Text,
                '[' => state = State::Bracket,
                '"' => state = State::Quoted,
                '-' if chars.peek() == Some(&'-') => {
                    out.push_str("--");
                    chars.next();
                    state = State::LineComment;
                    continue;
                }
                '/' if chars.peek() == Some(&'*') => {
                    out.push_str("/*");
                    chars.next();
                    state = State::BlockComment(1);
                    continue;
                }
                _ => {}
            },
            State::Text => {
                out.push(c);
                if c == '\'' && closes('\'', &mut chars, &mut out) {
                    state = State::Code;
                }
                continue;
            }
            State::Bracket => {
                out.push(c);
                if c == ']' && closes(']', &mut chars, &mut out) {
                    state = State::Code;
                }
                continue;
            }
            State::Quoted => {
                out.push(c);
                if c == '"' && closes('"', &mut chars, &mut out) {
                    state = State::Code;
                }
                continue;
            }
            State::LineComment => {
                if c == '\n' {
                    state = State::Code;
                }
            }
            State::BlockComment(depth) => {
                // T-SQL block comments nest.
                if c == '/' && chars.peek() == Some(&'*') {
                    out.push_str("/*");
                    chars.next();
                    state = State::BlockComment(depth + 1);
                    continue;
                }
                if c == '*' && chars.peek() == Some(&'/') {
                    out.push_str("*/");
                    chars.next();
                    state = if depth == 1 { State::Code } else { State::BlockComment(depth - 1) };
                    continue;
                }
            }
        }
        out.push(c);
    }
    (out, count)
}

/// A table's column names in table order, with its parameter (the quoted table name, which
/// `OBJECT_ID` parses, so `ERP.ITEM]X` is found as `[ERP].[ITEM]]X]`).
pub fn table_columns_query(table: &str) -> (String, Vec<Value>) {
    (
        "SELECT c.name FROM sys.columns AS c WHERE c.object_id = OBJECT_ID(?) ORDER BY c.column_id".to_string(),
        vec![Value::Text(quote_table(table))],
    )
}

/// `sql` (an `INSERT`, `UPDATE`, `DELETE` or `MERGE`) tagged with millrace's
/// `CHANGE_TRACKING_CONTEXT`, so that the change-tracking poller recognises the rows it changes as
/// millrace's own writes. The context is a constant: nothing from outside is spliced in.
pub fn with_change_tracking_context(sql: &str) -> String {
    format!("{CHANGE_TRACKING_CONTEXT_PREFIX}{sql}")
}

/// `WITH CHANGE_TRACKING_CONTEXT (…)` of [`super::MILLRACE_CT_CONTEXT`] (`b"millrace"` in hex).
const CHANGE_TRACKING_CONTEXT_PREFIX: &str = "WITH CHANGE_TRACKING_CONTEXT (0x6d696c6c72616365) ";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_literals_identifiers_and_comments() {
        let (sql, n) = translate_placeholders("SELECT * FROM [T] WHERE [A] > ? AND [B] = ?");
        assert_eq!(sql, "SELECT * FROM [T] WHERE [A] > @P1 AND [B] = @P2");
        assert_eq!(n, 2);

        let (sql, n) = translate_placeholders(
            "SELECT '?', N'it''s ?', [col?]]x], \"q?\"\"\" FROM T -- why?\nWHERE a = ? /* c? /* nested? */ still? */ AND b = ?",
        );
        assert_eq!(
            sql,
            "SELECT '?', N'it''s ?', [col?]]x], \"q?\"\"\" FROM T -- why?\nWHERE a = @P1 /* c? /* nested? */ still? */ AND b = @P2"
        );
        assert_eq!(n, 2);

        assert_eq!(translate_placeholders("SELECT 1"), ("SELECT 1".to_string(), 0));
        // Ten and more placeholders keep their numbers apart.
        let (sql, n) = translate_placeholders(&["?"; 11].join(","));
        assert_eq!(n, 11);
        assert!(sql.ends_with("@P10,@P11"), "{sql}");
    }

    // ---- SQL ----

    #[test]
    fn millrace_writes_carry_its_change_tracking_context() {
        // The bytes the change-tracking poller compares SYS_CHANGE_CONTEXT with, as a literal.
        assert_eq!(
            with_change_tracking_context("UPDATE [ERP].[ITEM] SET [DESCRIPTION] = ? WHERE [ITEM_NO] = ?"),
            "WITH CHANGE_TRACKING_CONTEXT (0x6d696c6c72616365) UPDATE [ERP].[ITEM] SET [DESCRIPTION] = ? WHERE [ITEM_NO] = ?"
        );
        let merge = "MERGE [T] AS t USING (SELECT ? AS [K]) AS s ON t.[K] = s.[K] WHEN NOT MATCHED THEN INSERT ([K]) VALUES (s.[K]);";
        let tagged = with_change_tracking_context(merge);
        assert!(tagged.starts_with("WITH CHANGE_TRACKING_CONTEXT (0x6d696c6c72616365) MERGE "), "{tagged}");
        // Placeholders are still numbered after the prefix.
        assert_eq!(translate_placeholders(&tagged).1, 1);
    }
}
