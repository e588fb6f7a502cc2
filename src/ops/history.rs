//! The recent history the operator page draws as charts: per direction, changes applied per
//! second and lag, one sample every [`HISTORY_EVERY`] over the last [`HISTORY_SPAN`]. Kept in
//! the service's memory (a ring buffer in `Metrics`), not in a database: it is a picture of
//! the last hours for whoever looks at the page, and Prometheus (`/metrics`) keeps the long
//! record. A restart starts the picture again. `Metrics::sample_history` takes the samples, on
//! the sampler task the HTTP endpoint runs (`http::spawn_history_sampler`).

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::json;

/// How often the sampler takes a sample.
pub const HISTORY_EVERY: Duration = Duration::from_secs(10);

/// How far back the history goes.
pub const HISTORY_SPAN: Duration = Duration::from_secs(6 * 3600);

/// Samples kept: the span at the sampler's pace.
const CAPACITY: usize = (HISTORY_SPAN.as_secs() / HISTORY_EVERY.as_secs()) as usize;

/// One point of the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Unix seconds.
    pub at: f64,
    /// Changes applied to the ERP per second since the previous sample (`None` for the first
    /// sample: there is nothing to take the difference from).
    pub odoo_to_legacy_per_second: Option<f64>,
    /// Changes applied to Odoo per second since the previous sample.
    pub legacy_to_odoo_per_second: Option<f64>,
    /// The longest time from an Odoo commit to its changes being handled, among the transactions
    /// finished since the previous sample and the one in hand (0 when none was).
    pub odoo_lag_seconds: f64,
    /// WAL between the server's position and the slot's confirmed flush (`None`: Odoo's
    /// database did not answer).
    pub odoo_lag_bytes: Option<i64>,
    /// Seconds since the least recently handled poll of any legacy table (`None`: no table has
    /// been polled yet).
    pub legacy_lag_seconds: Option<f64>,
}

/// What [`History::push`] is given at each sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Reading {
    pub at: f64,
    /// The applied counters, odoo_to_legacy and legacy_to_odoo, since the process started.
    pub applied: (u64, u64),
    pub odoo_lag_seconds: f64,
    pub odoo_lag_bytes: Option<i64>,
    pub legacy_lag_seconds: Option<f64>,
}

/// The ring buffer.
#[derive(Debug, Default)]
pub(super) struct History {
    samples: VecDeque<Sample>,
    /// The previous reading's time and applied counters: rates are differences from it.
    last: Option<(f64, (u64, u64))>,
}

impl History {
    pub(super) fn push(&mut self, r: Reading) {
        let rate = |now: u64, before: u64, seconds: f64| {
            // A counter never goes back; a clock that does gives no rate rather than a wild one.
            (seconds > 0.0).then(|| now.saturating_sub(before) as f64 / seconds)
        };
        let (odoo_to_legacy, legacy_to_odoo) = match self.last {
            Some((at, (o2l, l2o))) => (rate(r.applied.0, o2l, r.at - at), rate(r.applied.1, l2o, r.at - at)),
            None => (None, None),
        };
        self.last = Some((r.at, r.applied));
        if self.samples.len() == CAPACITY {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample {
            at: r.at,
            odoo_to_legacy_per_second: odoo_to_legacy,
            legacy_to_odoo_per_second: legacy_to_odoo,
            odoo_lag_seconds: r.odoo_lag_seconds,
            odoo_lag_bytes: r.odoo_lag_bytes,
            legacy_lag_seconds: r.legacy_lag_seconds,
        });
    }

    /// As `GET /api/history` serves it: one array per series (a column each, not an object per
    /// sample: 2,160 samples stay a few tens of kilobytes), times in unix seconds, values rounded
    /// to what a chart can show.
    pub(super) fn to_json(&self, now: f64) -> serde_json::Value {
        let round = |v: f64| (v * 1000.0).round() / 1000.0;
        let column = |f: &dyn Fn(&Sample) -> Option<f64>| -> Vec<Option<f64>> {
            self.samples.iter().map(|s| f(s).map(round)).collect()
        };
        json!({
            "now": round(now),
            "every_seconds": HISTORY_EVERY.as_secs(),
            "span_seconds": HISTORY_SPAN.as_secs(),
            "at": column(&|s| Some(s.at)),
            "odoo_to_legacy": {
                "per_second": column(&|s| s.odoo_to_legacy_per_second),
                "lag_seconds": column(&|s| Some(s.odoo_lag_seconds)),
                "lag_bytes": self.samples.iter().map(|s| s.odoo_lag_bytes).collect::<Vec<_>>(),
            },
            "legacy_to_odoo": {
                "per_second": column(&|s| s.legacy_to_odoo_per_second),
                "lag_seconds": column(&|s| s.legacy_lag_seconds),
            },
        })
    }

    #[cfg(test)]
    pub(super) fn samples(&self) -> Vec<Sample> {
        self.samples.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(at: f64, applied: (u64, u64)) -> Reading {
        Reading { at, applied, odoo_lag_seconds: 0.5, odoo_lag_bytes: Some(64), legacy_lag_seconds: Some(1.0) }
    }

    #[test]
    fn rates_are_differences_and_the_ring_keeps_the_span() {
        let mut h = History::default();
        h.push(reading(100.0, (5, 0)));
        h.push(reading(110.0, (25, 3)));
        let s = h.samples();
        assert_eq!(s[0].odoo_to_legacy_per_second, None, "the first sample has no rate");
        assert_eq!(s[1].odoo_to_legacy_per_second, Some(2.0));
        assert_eq!(s[1].legacy_to_odoo_per_second, Some(0.3));
        for i in 0..CAPACITY as u64 {
            h.push(reading(120.0 + i as f64 * 10.0, (25 + i, 3)));
        }
        let s = h.samples();
        assert_eq!(s.len(), CAPACITY);
        assert_eq!(s[0].at, 120.0, "the oldest fell out");
        let json = h.to_json(30_000.0);
        assert_eq!(json["at"].as_array().map(Vec::len), Some(CAPACITY));
        assert_eq!(json["odoo_to_legacy"]["per_second"][1], json!(0.1));
        assert_eq!(json["legacy_to_odoo"]["lag_seconds"][0], json!(1.0));
        assert_eq!(json["odoo_to_legacy"]["lag_bytes"][0], json!(64));
    }
}
