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

impl Lsn {
    /// The `16/B374D848` text, written into `buf` without the formatting machinery (`tail`
    /// writes one per change).
    pub fn format<'a>(&self, buf: &'a mut [u8; 17]) -> &'a str {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let mut at = 0;
        for (i, half) in [self.0 >> 32, self.0 & 0xFFFF_FFFF].into_iter().enumerate() {
            if i == 1 {
                buf[at] = b'/';
                at += 1;
            }
            let digits = (64 - half.leading_zeros()).div_ceil(4).max(1) as usize;
            for d in (0..digits).rev() {
                buf[at] = HEX[((half >> (d * 4)) & 15) as usize];
                at += 1;
            }
        }
        // Only ASCII hex digits and '/' were written.
        std::str::from_utf8(&buf[..at]).unwrap_or_default()
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.format(&mut [0; 17]))
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
        for (n, text) in [(0, "0/0"), (0xFFFF_FFFF_FFFF_FFFF, "FFFFFFFF/FFFFFFFF"), (0x1_0000_000A, "1/A")] {
            assert_eq!(Lsn(n).to_string(), text);
            assert_eq!(text.parse::<Lsn>().unwrap(), Lsn(n));
        }
    }
}
