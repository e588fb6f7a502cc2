//! Reading Parquet back with real readers (pyarrow and DuckDB, from the project's virtualenv).

use std::path::Path;

/// What `tests/readers/parquet_report.py` saw: pyarrow's row count and column types, and the
/// rows of each DuckDB query (`{src}` in a query is the Parquet source).
pub struct Report {
    pub rows: u64,
    pub types: serde_json::Map<String, serde_json::Value>,
    pub queries: Vec<Vec<Vec<serde_json::Value>>>,
}

impl Report {
    pub fn type_of(&self, column: &str) -> String {
        self.types.get(column).and_then(|t| t.as_str()).unwrap_or("<missing>").to_string()
    }

    /// The single value of query `i`.
    pub fn scalar(&self, i: usize) -> serde_json::Value {
        self.queries[i].first().and_then(|row| row.first()).cloned().unwrap_or(serde_json::Value::Null)
    }
}

pub fn report(path: &Path, queries: &[&str]) -> Report {
    let python = super::env_path("MILLRACE_PYTHON");
    let script = format!("{}/tests/readers/parquet_report.py", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(python).arg(script).arg(path).args(queries).output().expect("run python");
    assert!(out.status.success(), "reading {} back failed: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report JSON");
    Report {
        rows: json["pyarrow"]["rows"].as_u64().unwrap_or(0),
        types: json["pyarrow"]["types"].as_object().cloned().unwrap_or_default(),
        queries: serde_json::from_value(json["duckdb"].clone()).expect("query rows"),
    }
}
