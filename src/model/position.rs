//! Source positions. An [`Lsn`] orders every change of one PostgreSQL server.

use std::fmt;
use std::str::FromStr;

/// Where a change sits in its source. Totally ordered within one source: an LSN for Odoo; the
/// change-detection version (modified-at, rowversion, change-tracking version, or scan number)
/// and the row key for a legacy table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Position {
    Lsn(Lsn),
    Legacy { version: String, key: String },
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Lsn(lsn) => lsn.fmt(f),
            Position::Legacy { version, key } => write!(f, "{version} {key}"),
        }
    }
}

/// A PostgreSQL WAL position, printed as PostgreSQL prints it (`16/B374D848`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl Lsn {
    pub const ZERO: Lsn = Lsn(0);
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a WAL position (expected the form 16/B374D848)")]
pub struct LsnParseError(String);

impl FromStr for Lsn {
    type Err = LsnParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || LsnParseError(s.to_string());
        let (hi, lo) = s.split_once('/').ok_or_else(err)?;
        let hi = u64::from_str_radix(hi, 16).map_err(|_| err())?;
        let lo = u64::from_str_radix(lo, 16).map_err(|_| err())?;
        if hi > 0xFFFF_FFFF || lo > 0xFFFF_FFFF {
            return Err(err());
        }
        Ok(Lsn((hi << 32) | lo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_and_parses_like_postgres() {
        let lsn: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(lsn.0, 0x16_B374_D848);
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert!("16-B3".parse::<Lsn>().is_err());
    }
}
