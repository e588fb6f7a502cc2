//! Values as plain text: the text of a value for keys, parameters and messages, and the canonical
//! text of a row key. Stored in the control state (keys), so their forms never change.

use super::Value;

/// A value as plain text, for keys, parameters and messages.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::Null | Value::Unchanged => String::new(),
        Value::Bool(b) => if *b { "1" } else { "0" }.to_string(),
        Value::Int(n) => n.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Decimal(d) => d.to_string(),
        Value::Text(s) | Value::Json(s) => s.clone(),
        Value::Bytes(b) => b.iter().map(|x| format!("{x:02X}")).collect(),
        Value::Date(d) => d.format("%Y-%m-%d").to_string(),
        Value::Time(t) => t.format("%H:%M:%S%.f").to_string(),
        Value::Timestamp(t) => t.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        Value::TimestampTz(t) => t.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        // PostgreSQL's text: `{1,2,NULL}`, numeric `NaN`, date `infinity`.
        Value::Array(_) => super::to_pg_text(value).unwrap_or_default(),
        Value::Raw { text, .. } => text.clone(),
    }
}

/// The canonical text of a row key: a JSON array of the key values, CHAR padding trimmed, so
/// `'A100    '` and `'A100'` are the same item.
pub fn key_text(values: &[&Value]) -> String {
    let mut out = String::from("[");
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match value {
            Value::Int(n) => out.push_str(&n.to_string()),
            Value::Text(s) => out.push_str(&serde_json::Value::String(s.trim_end_matches(' ').to_string()).to_string()),
            Value::Null => out.push_str("null"),
            other => {
                let text = value_text(other);
                out.push_str(&serde_json::Value::String(text).to_string());
            }
        }
    }
    out.push(']');
    out
}

/// The key values back from [`key_text`] (numbers as `Int`, everything else as `Text`).
pub fn key_values(text: &str) -> Vec<Value> {
    match serde_json::from_str::<Vec<serde_json::Value>>(text) {
        Ok(values) => values
            .into_iter()
            .map(|v| match v {
                serde_json::Value::Number(n) => {
                    n.as_i64().map(Value::Int).unwrap_or_else(|| Value::Text(n.to_string()))
                }
                serde_json::Value::String(s) => Value::Text(s),
                serde_json::Value::Null => Value::Null,
                other => Value::Text(other.to_string()),
            })
            .collect(),
        Err(_) => vec![Value::Text(text.to_string())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_trimmed_and_round_trip() {
        let text = key_text(&[&Value::Text("A100    ".into()), &Value::Int(7)]);
        assert_eq!(text, r#"["A100",7]"#);
        assert_eq!(key_values(&text), vec![Value::Text("A100".into()), Value::Int(7)]);
    }
}
