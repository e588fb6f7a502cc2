//! An exact decimal of up to 38 significant digits, enough for any amount or quantity an ERP stores.

use std::fmt;
use std::str::FromStr;

/// `mantissa × 10^-scale`, exact. Trailing zeros are kept as the source wrote them, so `1.50` stays
/// `1.50` (PostgreSQL's `numeric` keeps them too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    mantissa: i128,
    scale: u8,
}

/// Why a text could not be read as a [`Decimal`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("not a decimal number")]
    Syntax,
    #[error("more than 38 significant digits")]
    TooManyDigits,
    #[error("NaN and infinities have no exact decimal form")]
    NotFinite,
}

pub const MAX_DIGITS: u32 = 38;

impl Decimal {
    pub fn new(mantissa: i128, scale: u8) -> Result<Self, DecimalError> {
        if mantissa.unsigned_abs() >= 10u128.pow(MAX_DIGITS) || u32::from(scale) > MAX_DIGITS {
            return Err(DecimalError::TooManyDigits);
        }
        Ok(Decimal { mantissa, scale })
    }

    pub fn mantissa(&self) -> i128 {
        self.mantissa
    }

    pub fn scale(&self) -> u8 {
        self.scale
    }

    /// The same number without trailing fractional zeros (`1.5000` → `1.5`, `2.00` → `2`), so that
    /// values from systems with different declared scales compare equal.
    pub fn normalized(&self) -> Decimal {
        let (mut mantissa, mut scale) = (self.mantissa, self.scale);
        while scale > 0 && mantissa % 10 == 0 {
            mantissa /= 10;
            scale -= 1;
        }
        Decimal { mantissa, scale }
    }

    /// Digits before the decimal point (`123.45` → 3, `0.5` → 0).
    pub fn integer_digits(&self) -> u32 {
        let digits = self.mantissa.unsigned_abs().checked_ilog10().map_or(0, |n| n + 1);
        digits.saturating_sub(u32::from(self.scale))
    }

    /// Rounds half away from zero to at most `places` fractional digits.
    pub fn round_to(&self, places: u8) -> Decimal {
        if self.scale <= places {
            return *self;
        }
        let divisor = 10i128.pow(u32::from(self.scale - places));
        let (q, r) = (self.mantissa / divisor, self.mantissa % divisor);
        let q = if r.abs() * 2 >= divisor { q + self.mantissa.signum() } else { q };
        Decimal { mantissa: q, scale: places }
    }

    /// Approximate value, for metrics and comparisons that need no exactness.
    pub fn to_f64(&self) -> f64 {
        self.mantissa as f64 / 10f64.powi(i32::from(self.scale))
    }
}

impl FromStr for Decimal {
    type Err = DecimalError;

    /// Reads PostgreSQL's `numeric` text form: `-12.340`, `5`, `.5`, `1e3` (exponent only from
    /// other sources; PostgreSQL never prints one).
    fn from_str(text: &str) -> Result<Self, DecimalError> {
        let s = text.trim();
        match s {
            "NaN" | "Infinity" | "-Infinity" | "inf" | "-inf" => return Err(DecimalError::NotFinite),
            _ => {}
        }
        let (negative, body) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let (body, exponent) = match body.find(['e', 'E']) {
            Some(i) => {
                let exp: i32 = body[i + 1..].parse().map_err(|_| DecimalError::Syntax)?;
                (&body[..i], exp)
            }
            None => (body, 0),
        };
        let mut mantissa: i128 = 0;
        let mut digits = 0u32;
        let mut scale: i32 = 0;
        let mut seen_point = false;
        let mut seen_digit = false;
        for b in body.bytes() {
            match b {
                b'0'..=b'9' => {
                    seen_digit = true;
                    if mantissa != 0 || b != b'0' {
                        digits += 1;
                    }
                    if digits > MAX_DIGITS {
                        return Err(DecimalError::TooManyDigits);
                    }
                    mantissa = mantissa * 10 + i128::from(b - b'0');
                    if seen_point {
                        scale += 1;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                _ => return Err(DecimalError::Syntax),
            }
        }
        if !seen_digit {
            return Err(DecimalError::Syntax);
        }
        // Bound the exponent before using it: `1e-2147483648` must not overflow, and `0e2000000000`
        // must not loop two billion times.
        if exponent.unsigned_abs() > 2 * MAX_DIGITS {
            return Err(DecimalError::TooManyDigits);
        }
        scale -= exponent;
        while scale < 0 {
            mantissa = mantissa.checked_mul(10).ok_or(DecimalError::TooManyDigits)?;
            scale += 1;
        }
        let scale = u8::try_from(scale).map_err(|_| DecimalError::TooManyDigits)?;
        Decimal::new(if negative { -mantissa } else { mantissa }, scale)
    }
}

/// Room for any decimal's text: 39 digits (38, or a zero before the point), a point and a sign.
pub const DECIMAL_TEXT_MAX: usize = 48;

impl Decimal {
    /// The decimal's text (`-12.340`, `0.005`), written into `buf` without allocating: `tail`
    /// writes one for every numeric column of every change.
    pub fn format<'a>(&self, buf: &'a mut [u8; DECIMAL_TEXT_MAX]) -> &'a str {
        // Digits, least significant first: u128 arithmetic only while the value needs it.
        let mut digits = [0u8; 40];
        let mut len = 0;
        let mut big = self.mantissa.unsigned_abs();
        while big > u128::from(u64::MAX) {
            digits[len] = (big % 10) as u8;
            big /= 10;
            len += 1;
        }
        let mut small = big as u64;
        loop {
            digits[len] = (small % 10) as u8;
            small /= 10;
            len += 1;
            if small == 0 {
                break;
            }
        }
        let scale = usize::from(self.scale);
        let shown = len.max(scale + 1);
        let mut at = 0;
        if self.mantissa < 0 {
            buf[at] = b'-';
            at += 1;
        }
        for k in 0..shown {
            if scale > 0 && k == shown - scale {
                buf[at] = b'.';
                at += 1;
            }
            let index = shown - 1 - k;
            buf[at] = b'0' + if index < len { digits[index] } else { 0 };
            at += 1;
        }
        // Only ASCII digits, '-' and '.' were written.
        std::str::from_utf8(&buf[..at]).unwrap_or_default()
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.format(&mut [0; DECIMAL_TEXT_MAX]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_postgres_text() {
        for text in [
            "0",
            "1.50",
            "-12.340",
            "0.0001",
            "123456789012345678901234567890.12345678",
            "-0.5",
            "0.00000000000000000000000000000000000001",
            "-99999999999999999999999999999999999999",
            "18446744073709551616",
            "-1844674407370955161.5",
            "0.000",
        ] {
            let d: Decimal = text.parse().unwrap();
            assert_eq!(d.to_string(), text, "{text}");
        }
    }

    #[test]
    fn reads_exponent_and_leading_point() {
        assert_eq!(".5".parse::<Decimal>().unwrap().to_string(), "0.5");
        assert_eq!("1.5e3".parse::<Decimal>().unwrap().to_string(), "1500");
        assert_eq!("15e-3".parse::<Decimal>().unwrap().to_string(), "0.015");
    }

    #[test]
    fn refuses_what_it_cannot_hold_exactly() {
        assert_eq!("NaN".parse::<Decimal>(), Err(DecimalError::NotFinite));
        assert_eq!("1".repeat(39).parse::<Decimal>(), Err(DecimalError::TooManyDigits));
        assert_eq!("12a".parse::<Decimal>(), Err(DecimalError::Syntax));
        assert_eq!("".parse::<Decimal>(), Err(DecimalError::Syntax));
        assert_eq!("1e-2147483648".parse::<Decimal>(), Err(DecimalError::TooManyDigits));
        assert_eq!("0e2000000000".parse::<Decimal>(), Err(DecimalError::TooManyDigits));
    }
}
