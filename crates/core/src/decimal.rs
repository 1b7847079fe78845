//! Decimal text to `f64`, correctly rounded, without the 11 KB power-of-five table that
//! `str::parse::<f64>` links (its Eisel-Lemire step).
//!
//! [`parse`] accepts exactly the grammar of `<f64 as FromStr>` for finite numbers (an optional
//! sign, digits with an optional `.` and at least one digit, an optional exponent
//! `e`/`E` with an optional sign) and returns the same value, bit for bit:
//!
//! - Clinger's fast path when the digits fit in 53 bits and the power of ten is exact in an
//!   `f64` (most numbers people write: `42`, `0.1`, `12.5`, `1e10`);
//! - otherwise the "simple decimal conversion" of Nigel Tao and Ken Thompson, ported from
//!   `core::num::dec2flt` (`decimal_seq.rs` and `slow.rs`, MIT or Apache-2.0, the Rust project),
//!   which rounds every input correctly with a big decimal and no large table.
//!
//! Words (`inf`, `nan`) and results out of range are `None`: promptflag only wants finite numbers.
//! A test compares this with `str::parse` over millions of generated inputs.

/// Significant bits of an `f64`, without the hidden one.
const SIG_BITS: u32 = 52;
/// The smallest binary exponent of a normal `f64`.
const EXP_MIN: i32 = -1022;
/// The biased exponent of infinity.
const INFINITE_POWER: i32 = 0x7FF;

/// `10^0 ..= 10^22`, each exact in an `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Parses `text` (no surrounding whitespace) as `str::parse::<f64>` would, keeping finite results.
pub(crate) fn parse(text: &[u8]) -> Option<f64> {
    let (negative, body) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    // One pass checks the grammar; the slow path runs only on valid text.
    let magnitude = match scan(body) {
        Scan::Invalid => return None,
        Scan::Digits { mantissa, exponent } => match fast(mantissa, exponent) {
            Some(value) => value,
            None => slow(body)?,
        },
        Scan::Slow => slow(body)?,
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// Checks the grammar and reads up to 19 significant digits with their power of ten.
fn scan(body: &[u8]) -> Scan {
    let mut index = 0;
    let mut mantissa = 0_u64;
    let mut significant = 0_usize;
    let mut exponent = 0_i64;
    let mut digits = 0_usize;
    let mut seen_point = false;
    while index < body.len() {
        let byte = body[index];
        if byte.is_ascii_digit() {
            digits += 1;
            if significant > 0 || byte != b'0' {
                significant += 1;
                if significant <= 19 {
                    mantissa = mantissa * 10 + u64::from(byte - b'0');
                    if seen_point {
                        exponent -= 1;
                    }
                }
            } else if seen_point {
                exponent -= 1;
            }
        } else if byte == b'.' && !seen_point {
            seen_point = true;
        } else {
            break;
        }
        index += 1;
    }
    if digits == 0 {
        return Scan::Invalid;
    }
    if index < body.len() {
        if body[index] | 0x20 != b'e' {
            return Scan::Invalid;
        }
        index += 1;
        let negative = match body.get(index) {
            Some(b'-') => {
                index += 1;
                true
            }
            Some(b'+') => {
                index += 1;
                false
            }
            _ => false,
        };
        let start = index;
        let mut written = 0_i64;
        while let Some(byte) = body.get(index).filter(|b| b.is_ascii_digit()) {
            if written < 0x10000 {
                written = written * 10 + i64::from(byte - b'0');
            }
            index += 1;
        }
        if index == start || index != body.len() {
            return Scan::Invalid;
        }
        exponent += if negative { -written } else { written };
    }
    if significant > 19 {
        return Scan::Slow;
    }
    Scan::Digits { mantissa, exponent }
}

enum Scan {
    Invalid,
    Slow,
    Digits { mantissa: u64, exponent: i64 },
}

/// Clinger's fast path: the value of `mantissa * 10^exponent` when the digits and the power of
/// ten are both exact in an `f64`, so one multiplication or division rounds correctly; `None`
/// otherwise.
fn fast(mantissa: u64, exponent: i64) -> Option<f64> {
    if mantissa == 0 {
        return Some(0.0);
    }
    if mantissa > 1 << 53 {
        return None;
    }
    let value = mantissa as f64;
    match exponent {
        0..=22 => Some(value * POW10[exponent as usize]),
        -22..=-1 => Some(value / POW10[(-exponent) as usize]),
        23..=37 => {
            // 10^(exponent - 22) folded into the mantissa while it stays exact.
            let shifted = mantissa.checked_mul(10_u64.pow((exponent - 22) as u32))?;
            (shifted <= 1 << 53).then(|| shifted as f64 * POW10[22])
        }
        _ => None,
    }
}

/// The correctly rounded value of `body`, which [`scan`] accepted, or `None` when it is out of
/// range.
fn slow(body: &[u8]) -> Option<f64> {
    let (mantissa, power) = long_mantissa(body)?;
    Some(f64::from_bits(
        (u64::from(power as u32) << SIG_BITS) | mantissa,
    ))
}

/// The fallback of `core::num::dec2flt::slow::parse_long_mantissa` for `f64`: the explicit
/// mantissa bits and the biased exponent, or `None` for infinity.
fn long_mantissa(body: &[u8]) -> Option<(u64, i32)> {
    const MAX_SHIFT: usize = 60;
    const POWERS: [u8; 19] = [
        0, 3, 6, 9, 13, 16, 19, 23, 26, 29, 33, 36, 39, 43, 46, 49, 53, 56, 59,
    ];
    let get_shift = |n: usize| POWERS.get(n).map_or(MAX_SHIFT, |&s| usize::from(s));

    let mut d = DecimalSeq::parse(body);
    if d.num_digits == 0 || d.decimal_point < -324 {
        return Some((0, 0));
    } else if d.decimal_point >= 310 {
        return None;
    }
    let mut exp2 = 0_i32;
    while d.decimal_point > 0 {
        let shift = get_shift(d.decimal_point as usize);
        d.right_shift(shift);
        if d.decimal_point < -DecimalSeq::DECIMAL_POINT_RANGE {
            return Some((0, 0));
        }
        exp2 += shift as i32;
    }
    while d.decimal_point <= 0 {
        let shift = if d.decimal_point == 0 {
            match d.digits[0] {
                digit if digit >= 5 => break,
                0 | 1 => 2,
                _ => 1,
            }
        } else {
            get_shift((-d.decimal_point) as usize)
        };
        d.left_shift(shift);
        if d.decimal_point > DecimalSeq::DECIMAL_POINT_RANGE {
            return None;
        }
        exp2 -= shift as i32;
    }
    exp2 -= 1;
    while EXP_MIN > exp2 {
        let n = ((EXP_MIN - exp2) as usize).min(MAX_SHIFT);
        d.right_shift(n);
        exp2 += n as i32;
    }
    if (exp2 - EXP_MIN + 1) >= INFINITE_POWER {
        return None;
    }
    d.left_shift(SIG_BITS as usize + 1);
    let mut mantissa = d.round();
    if mantissa >= (1_u64 << (SIG_BITS + 1)) {
        d.right_shift(1);
        exp2 += 1;
        mantissa = d.round();
        if (exp2 - EXP_MIN + 1) >= INFINITE_POWER {
            return None;
        }
    }
    let mut power2 = exp2 - EXP_MIN + 1;
    if mantissa < (1_u64 << SIG_BITS) {
        power2 -= 1;
    }
    Some((mantissa & ((1_u64 << SIG_BITS) - 1), power2))
}

/// A decimal as a sequence of digits, as in `core::num::dec2flt::decimal_seq`.
struct DecimalSeq {
    num_digits: usize,
    decimal_point: i32,
    truncated: bool,
    digits: [u8; Self::MAX_DIGITS],
}

impl DecimalSeq {
    /// Digits needed to round any `f64` unambiguously, plus one.
    const MAX_DIGITS: usize = 768;
    const MAX_DIGITS_WITHOUT_OVERFLOW: usize = 19;
    const DECIMAL_POINT_RANGE: i32 = 2047;

    fn try_add_digit(&mut self, digit: u8) {
        if self.num_digits < Self::MAX_DIGITS {
            self.digits[self.num_digits] = digit;
        }
        self.num_digits += 1;
    }

    fn trim(&mut self) {
        while self.num_digits != 0 && self.digits[self.num_digits - 1] == 0 {
            self.num_digits -= 1;
        }
    }

    fn round(&self) -> u64 {
        if self.num_digits == 0 || self.decimal_point < 0 {
            return 0;
        } else if self.decimal_point >= Self::MAX_DIGITS_WITHOUT_OVERFLOW as i32 {
            return u64::MAX;
        }
        let dp = self.decimal_point as usize;
        let mut n = 0_u64;
        for i in 0..dp {
            n *= 10;
            if i < self.num_digits {
                n += u64::from(self.digits[i]);
            }
        }
        let mut round_up = false;
        if dp < self.num_digits {
            round_up = self.digits[dp] >= 5;
            if self.digits[dp] == 5 && dp + 1 == self.num_digits {
                round_up = self.truncated || ((dp != 0) && (1 & self.digits[dp - 1] != 0));
            }
        }
        n + u64::from(round_up)
    }

    /// `self * 2^shift`.
    fn left_shift(&mut self, shift: usize) {
        if self.num_digits == 0 {
            return;
        }
        let num_new_digits = self.new_digits_of_left_shift(shift);
        let mut read_index = self.num_digits;
        let mut write_index = self.num_digits + num_new_digits;
        let mut n = 0_u64;
        while read_index != 0 {
            read_index -= 1;
            write_index -= 1;
            n += u64::from(self.digits[read_index]) << shift;
            self.put(write_index, n % 10);
            n /= 10;
        }
        while n > 0 {
            write_index -= 1;
            self.put(write_index, n % 10);
            n /= 10;
        }
        self.num_digits = (self.num_digits + num_new_digits).min(Self::MAX_DIGITS);
        self.decimal_point += num_new_digits as i32;
        self.trim();
    }

    fn put(&mut self, index: usize, digit: u64) {
        if index < Self::MAX_DIGITS {
            self.digits[index] = digit as u8;
        } else if digit > 0 {
            self.truncated = true;
        }
    }

    /// `self * 2^-shift`.
    fn right_shift(&mut self, shift: usize) {
        let mut read_index = 0;
        let mut write_index = 0;
        let mut n = 0_u64;
        while (n >> shift) == 0 {
            if read_index < self.num_digits {
                n = (10 * n) + u64::from(self.digits[read_index]);
                read_index += 1;
            } else if n == 0 {
                return;
            } else {
                while (n >> shift) == 0 {
                    n *= 10;
                    read_index += 1;
                }
                break;
            }
        }
        self.decimal_point -= read_index as i32 - 1;
        if self.decimal_point < -Self::DECIMAL_POINT_RANGE {
            self.num_digits = 0;
            self.decimal_point = 0;
            self.truncated = false;
            return;
        }
        let mask = (1_u64 << shift) - 1;
        while read_index < self.num_digits {
            let new_digit = (n >> shift) as u8;
            n = (10 * (n & mask)) + u64::from(self.digits[read_index]);
            read_index += 1;
            self.digits[write_index] = new_digit;
            write_index += 1;
        }
        while n > 0 {
            let new_digit = (n >> shift) as u8;
            n = 10 * (n & mask);
            if write_index < Self::MAX_DIGITS {
                self.digits[write_index] = new_digit;
                write_index += 1;
            } else if new_digit > 0 {
                self.truncated = true;
            }
        }
        self.num_digits = write_index;
        self.trim();
    }

    /// Reads valid number text (no sign) into digits and a decimal point.
    fn parse(body: &[u8]) -> Self {
        let mut d = Self {
            num_digits: 0,
            decimal_point: 0,
            truncated: false,
            digits: [0; Self::MAX_DIGITS],
        };
        let mut s = body;
        while let Some((&b'0', rest)) = s.split_first() {
            s = rest;
        }
        s = parse_digits(s, |digit| d.try_add_digit(digit));
        if let Some((b'.', rest)) = s.split_first() {
            s = rest;
            let first = s.len();
            if d.num_digits == 0 {
                while let Some((&b'0', rest)) = s.split_first() {
                    s = rest;
                }
            }
            s = parse_digits(s, |digit| d.try_add_digit(digit));
            d.decimal_point = s.len() as i32 - first as i32;
        }
        if d.num_digits != 0 {
            // Trailing zeros are not significant.
            let mut trailing_zeros = 0;
            for &c in body[..body.len() - s.len()].iter().rev() {
                if c == b'0' {
                    trailing_zeros += 1;
                } else if c != b'.' {
                    break;
                }
            }
            d.decimal_point += trailing_zeros as i32;
            d.num_digits -= trailing_zeros;
            d.decimal_point += d.num_digits as i32;
            if d.num_digits > Self::MAX_DIGITS {
                d.truncated = true;
                d.num_digits = Self::MAX_DIGITS;
            }
        }
        if let Some((&ch, rest)) = s.split_first()
            && ch | 0x20 == b'e'
        {
            s = rest;
            let mut negative = false;
            if let Some((&ch, rest)) = s.split_first() {
                negative = ch == b'-';
                if ch == b'-' || ch == b'+' {
                    s = rest;
                }
            }
            let mut exponent = 0_i32;
            parse_digits(s, |digit| {
                if exponent < 0x10000 {
                    exponent = 10 * exponent + i32::from(digit);
                }
            });
            d.decimal_point += if negative { -exponent } else { exponent };
        }
        for i in d.num_digits..Self::MAX_DIGITS_WITHOUT_OVERFLOW {
            d.digits[i] = 0;
        }
        d
    }

    /// How many digits `left_shift(shift)` adds: the digits of `2^shift`'s magnitude, one fewer
    /// when the leading digits are below those of `5^shift`.
    fn new_digits_of_left_shift(&self, shift: usize) -> usize {
        let shift = shift & 63;
        let x_a = LEFT_SHIFT[shift];
        let x_b = LEFT_SHIFT[shift + 1];
        let num_new_digits = usize::from(x_a >> 11);
        let pow5_a = usize::from(0x7FF & x_a);
        let pow5_b = usize::from(0x7FF & x_b);
        for (i, &p5) in LEFT_SHIFT_POW5[pow5_a..pow5_b].iter().enumerate() {
            if i >= self.num_digits {
                return num_new_digits - 1;
            } else if self.digits[i] == p5 {
                continue;
            } else if self.digits[i] < p5 {
                return num_new_digits - 1;
            } else {
                return num_new_digits;
            }
        }
        num_new_digits
    }
}

fn parse_digits(mut s: &[u8], mut each: impl FnMut(u8)) -> &[u8] {
    while let Some((&c, rest)) = s.split_first() {
        let digit = c.wrapping_sub(b'0');
        if digit >= 10 {
            break;
        }
        each(digit);
        s = rest;
    }
    s
}

/// Per shift: the digits a left shift adds (top 5 bits) and where `5^shift` starts in
/// [`LEFT_SHIFT_POW5`] (low 11 bits).
#[rustfmt::skip]
const LEFT_SHIFT: [u16; 65] = [
    0x0000, 0x0800, 0x0801, 0x0803, 0x1006, 0x1009, 0x100D, 0x1812, 0x1817, 0x181D, 0x2024,
    0x202B, 0x2033, 0x203C, 0x2846, 0x2850, 0x285B, 0x3067, 0x3073, 0x3080, 0x388E, 0x389C,
    0x38AB, 0x38BB, 0x40CC, 0x40DD, 0x40EF, 0x4902, 0x4915, 0x4929, 0x513E, 0x5153, 0x5169,
    0x5180, 0x5998, 0x59B0, 0x59C9, 0x61E3, 0x61FD, 0x6218, 0x6A34, 0x6A50, 0x6A6D, 0x6A8B,
    0x72AA, 0x72C9, 0x72E9, 0x7B0A, 0x7B2B, 0x7B4D, 0x8370, 0x8393, 0x83B7, 0x83DC, 0x8C02,
    0x8C28, 0x8C4F, 0x9477, 0x949F, 0x94C8, 0x9CF2, 0x051C, 0x051C, 0x051C, 0x051C,
];

/// The decimal digits of `5^1`, `5^2`, … `5^60`, one after another.
#[rustfmt::skip]
const LEFT_SHIFT_POW5: [u8; 0x051C] = [
    5, 2, 5, 1, 2, 5, 6, 2, 5, 3, 1, 2, 5, 1, 5, 6, 2, 5, 7, 8, 1, 2, 5, 3, 9, 0, 6, 2, 5, 1,
    9, 5, 3, 1, 2, 5, 9, 7, 6, 5, 6, 2, 5, 4, 8, 8, 2, 8, 1, 2, 5, 2, 4, 4, 1, 4, 0, 6, 2, 5,
    1, 2, 2, 0, 7, 0, 3, 1, 2, 5, 6, 1, 0, 3, 5, 1, 5, 6, 2, 5, 3, 0, 5, 1, 7, 5, 7, 8, 1, 2,
    5, 1, 5, 2, 5, 8, 7, 8, 9, 0, 6, 2, 5, 7, 6, 2, 9, 3, 9, 4, 5, 3, 1, 2, 5, 3, 8, 1, 4, 6,
    9, 7, 2, 6, 5, 6, 2, 5, 1, 9, 0, 7, 3, 4, 8, 6, 3, 2, 8, 1, 2, 5, 9, 5, 3, 6, 7, 4, 3, 1,
    6, 4, 0, 6, 2, 5, 4, 7, 6, 8, 3, 7, 1, 5, 8, 2, 0, 3, 1, 2, 5, 2, 3, 8, 4, 1, 8, 5, 7, 9,
    1, 0, 1, 5, 6, 2, 5, 1, 1, 9, 2, 0, 9, 2, 8, 9, 5, 5, 0, 7, 8, 1, 2, 5, 5, 9, 6, 0, 4, 6,
    4, 4, 7, 7, 5, 3, 9, 0, 6, 2, 5, 2, 9, 8, 0, 2, 3, 2, 2, 3, 8, 7, 6, 9, 5, 3, 1, 2, 5, 1,
    4, 9, 0, 1, 1, 6, 1, 1, 9, 3, 8, 4, 7, 6, 5, 6, 2, 5, 7, 4, 5, 0, 5, 8, 0, 5, 9, 6, 9, 2,
    3, 8, 2, 8, 1, 2, 5, 3, 7, 2, 5, 2, 9, 0, 2, 9, 8, 4, 6, 1, 9, 1, 4, 0, 6, 2, 5, 1, 8, 6,
    2, 6, 4, 5, 1, 4, 9, 2, 3, 0, 9, 5, 7, 0, 3, 1, 2, 5, 9, 3, 1, 3, 2, 2, 5, 7, 4, 6, 1, 5,
    4, 7, 8, 5, 1, 5, 6, 2, 5, 4, 6, 5, 6, 6, 1, 2, 8, 7, 3, 0, 7, 7, 3, 9, 2, 5, 7, 8, 1, 2,
    5, 2, 3, 2, 8, 3, 0, 6, 4, 3, 6, 5, 3, 8, 6, 9, 6, 2, 8, 9, 0, 6, 2, 5, 1, 1, 6, 4, 1, 5,
    3, 2, 1, 8, 2, 6, 9, 3, 4, 8, 1, 4, 4, 5, 3, 1, 2, 5, 5, 8, 2, 0, 7, 6, 6, 0, 9, 1, 3, 4,
    6, 7, 4, 0, 7, 2, 2, 6, 5, 6, 2, 5, 2, 9, 1, 0, 3, 8, 3, 0, 4, 5, 6, 7, 3, 3, 7, 0, 3, 6,
    1, 3, 2, 8, 1, 2, 5, 1, 4, 5, 5, 1, 9, 1, 5, 2, 2, 8, 3, 6, 6, 8, 5, 1, 8, 0, 6, 6, 4, 0,
    6, 2, 5, 7, 2, 7, 5, 9, 5, 7, 6, 1, 4, 1, 8, 3, 4, 2, 5, 9, 0, 3, 3, 2, 0, 3, 1, 2, 5, 3,
    6, 3, 7, 9, 7, 8, 8, 0, 7, 0, 9, 1, 7, 1, 2, 9, 5, 1, 6, 6, 0, 1, 5, 6, 2, 5, 1, 8, 1, 8,
    9, 8, 9, 4, 0, 3, 5, 4, 5, 8, 5, 6, 4, 7, 5, 8, 3, 0, 0, 7, 8, 1, 2, 5, 9, 0, 9, 4, 9, 4,
    7, 0, 1, 7, 7, 2, 9, 2, 8, 2, 3, 7, 9, 1, 5, 0, 3, 9, 0, 6, 2, 5, 4, 5, 4, 7, 4, 7, 3, 5,
    0, 8, 8, 6, 4, 6, 4, 1, 1, 8, 9, 5, 7, 5, 1, 9, 5, 3, 1, 2, 5, 2, 2, 7, 3, 7, 3, 6, 7, 5,
    4, 4, 3, 2, 3, 2, 0, 5, 9, 4, 7, 8, 7, 5, 9, 7, 6, 5, 6, 2, 5, 1, 1, 3, 6, 8, 6, 8, 3, 7,
    7, 2, 1, 6, 1, 6, 0, 2, 9, 7, 3, 9, 3, 7, 9, 8, 8, 2, 8, 1, 2, 5, 5, 6, 8, 4, 3, 4, 1, 8,
    8, 6, 0, 8, 0, 8, 0, 1, 4, 8, 6, 9, 6, 8, 9, 9, 4, 1, 4, 0, 6, 2, 5, 2, 8, 4, 2, 1, 7, 0,
    9, 4, 3, 0, 4, 0, 4, 0, 0, 7, 4, 3, 4, 8, 4, 4, 9, 7, 0, 7, 0, 3, 1, 2, 5, 1, 4, 2, 1, 0,
    8, 5, 4, 7, 1, 5, 2, 0, 2, 0, 0, 3, 7, 1, 7, 4, 2, 2, 4, 8, 5, 3, 5, 1, 5, 6, 2, 5, 7, 1,
    0, 5, 4, 2, 7, 3, 5, 7, 6, 0, 1, 0, 0, 1, 8, 5, 8, 7, 1, 1, 2, 4, 2, 6, 7, 5, 7, 8, 1, 2,
    5, 3, 5, 5, 2, 7, 1, 3, 6, 7, 8, 8, 0, 0, 5, 0, 0, 9, 2, 9, 3, 5, 5, 6, 2, 1, 3, 3, 7, 8,
    9, 0, 6, 2, 5, 1, 7, 7, 6, 3, 5, 6, 8, 3, 9, 4, 0, 0, 2, 5, 0, 4, 6, 4, 6, 7, 7, 8, 1, 0,
    6, 6, 8, 9, 4, 5, 3, 1, 2, 5, 8, 8, 8, 1, 7, 8, 4, 1, 9, 7, 0, 0, 1, 2, 5, 2, 3, 2, 3, 3,
    8, 9, 0, 5, 3, 3, 4, 4, 7, 2, 6, 5, 6, 2, 5, 4, 4, 4, 0, 8, 9, 2, 0, 9, 8, 5, 0, 0, 6, 2,
    6, 1, 6, 1, 6, 9, 4, 5, 2, 6, 6, 7, 2, 3, 6, 3, 2, 8, 1, 2, 5, 2, 2, 2, 0, 4, 4, 6, 0, 4,
    9, 2, 5, 0, 3, 1, 3, 0, 8, 0, 8, 4, 7, 2, 6, 3, 3, 3, 6, 1, 8, 1, 6, 4, 0, 6, 2, 5, 1, 1,
    1, 0, 2, 2, 3, 0, 2, 4, 6, 2, 5, 1, 5, 6, 5, 4, 0, 4, 2, 3, 6, 3, 1, 6, 6, 8, 0, 9, 0, 8,
    2, 0, 3, 1, 2, 5, 5, 5, 5, 1, 1, 1, 5, 1, 2, 3, 1, 2, 5, 7, 8, 2, 7, 0, 2, 1, 1, 8, 1, 5,
    8, 3, 4, 0, 4, 5, 4, 1, 0, 1, 5, 6, 2, 5, 2, 7, 7, 5, 5, 5, 7, 5, 6, 1, 5, 6, 2, 8, 9, 1,
    3, 5, 1, 0, 5, 9, 0, 7, 9, 1, 7, 0, 2, 2, 7, 0, 5, 0, 7, 8, 1, 2, 5, 1, 3, 8, 7, 7, 7, 8,
    7, 8, 0, 7, 8, 1, 4, 4, 5, 6, 7, 5, 5, 2, 9, 5, 3, 9, 5, 8, 5, 1, 1, 3, 5, 2, 5, 3, 9, 0,
    6, 2, 5, 6, 9, 3, 8, 8, 9, 3, 9, 0, 3, 9, 0, 7, 2, 2, 8, 3, 7, 7, 6, 4, 7, 6, 9, 7, 9, 2,
    5, 5, 6, 7, 6, 2, 6, 9, 5, 3, 1, 2, 5, 3, 4, 6, 9, 4, 4, 6, 9, 5, 1, 9, 5, 3, 6, 1, 4, 1,
    8, 8, 8, 2, 3, 8, 4, 8, 9, 6, 2, 7, 8, 3, 8, 1, 3, 4, 7, 6, 5, 6, 2, 5, 1, 7, 3, 4, 7, 2,
    3, 4, 7, 5, 9, 7, 6, 8, 0, 7, 0, 9, 4, 4, 1, 1, 9, 2, 4, 4, 8, 1, 3, 9, 1, 9, 0, 6, 7, 3,
    8, 2, 8, 1, 2, 5, 8, 6, 7, 3, 6, 1, 7, 3, 7, 9, 8, 8, 4, 0, 3, 5, 4, 7, 2, 0, 5, 9, 6, 2,
    2, 4, 0, 6, 9, 5, 9, 5, 3, 3, 6, 9, 1, 4, 0, 6, 2, 5,
];

#[cfg(test)]
mod tests {
    use super::parse;
    use alloc::format;
    use alloc::string::String;

    /// What promptflag parsed before: `str::parse`, finite results only.
    fn reference(text: &str) -> Option<f64> {
        text.parse::<f64>().ok().filter(|v| v.is_finite())
    }

    fn check(text: &str) {
        let ours = parse(text.as_bytes());
        let theirs = reference(text);
        assert_eq!(
            ours.map(f64::to_bits),
            theirs.map(f64::to_bits),
            "{text:?}: {ours:?} vs {theirs:?}"
        );
    }

    #[test]
    fn agrees_with_str_parse_on_hard_cases() {
        for text in [
            "0",
            "-0",
            "+0",
            "0.0",
            "00",
            "0e0",
            "0e999999999",
            "1e-999999",
            "1",
            "-1",
            "+1",
            ".5",
            "5.",
            ".",
            "",
            "-",
            "+",
            "e5",
            "1e",
            "1e+",
            "1e-",
            "1E5",
            "1e+5",
            "1e-5",
            "1.e3",
            ".e3",
            "1..2",
            "1.2.3",
            "--1",
            "+-1",
            "1e5.0",
            " 1",
            "1 ",
            "0x10",
            "1_000",
            "inf",
            "-inf",
            "infinity",
            "nan",
            "NaN",
            "1f",
            "١",
            "0.1",
            "0.2",
            "0.3",
            "12.5",
            "3.14159",
            "9007199254740992",
            "9007199254740993",
            "9007199254740994",
            "9007199254740995",
            "18014398509481985",
            "123456789012345678",
            "1234567890123456789",
            "12345678901234567890",
            "123456789012345678901234567890",
            "1e22",
            "1e23",
            "1e37",
            "1e38",
            "123e30",
            "9007199254740993e15",
            "1.7976931348623157e308",
            "1.7976931348623158e308",
            "1.7976931348623159e308",
            "1.8e308",
            "1e308",
            "1e309",
            "2.2250738585072014e-308",
            "2.2250738585072011e-308",
            "4.9406564584124654e-324",
            "2.4703282292062327e-324",
            "2.4703282292062328e-324",
            "5e-324",
            "3e-324",
            "1e-325",
            "2.2250738585072012e-308",
            "0.000000000000000000000000000001",
            "7.2057594037927933e16",
            "2.9802322387695312e-8",
            "4.35679614847e-307",
            "9214843084008499",
            "30078505129381147446200",
            "1777820000000000000001",
            "0.500000000000000166533453693773481063544750213623046875",
            "3.518437208883201171875e13",
            "62.5364939768271845828",
            "8.10109172351e-10",
            "1.50000000000000011102230246251565404236316680908203125",
            "9007199254740993.0000000000000000000000000000000000000000000000000000001",
            "2.225073858507201136057409796709131975934819546351645648e-308",
        ] {
            check(text);
        }
        // More digits than the decimal keeps (768), with the deciding digit past them.
        let mut long = String::from("0.");
        long.push_str(&"0".repeat(300));
        long.push_str(&"1".repeat(1000));
        check(&long);
        let halfway = format!("9007199254740993{}1", "0".repeat(800));
        check(&halfway);
        check(&format!("9007199254740993{}", "0".repeat(800)));
    }

    /// Generated cases per test (fewer on wasm32, where the suite runs unoptimized in Node).
    const ROUNDS: usize = if cfg!(target_arch = "wasm32") {
        5_000
    } else {
        40_000
    };

    /// A small deterministic generator (xorshift), so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn agrees_with_str_parse_on_generated_text() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let alphabet = b"0123456789.eE+-x ";
        for round in 0..ROUNDS * 4 {
            let mut text = String::new();
            if round % 4 == 0 {
                // Arbitrary bytes from the number alphabet: mostly invalid grammar.
                for _ in 0..rng.below(12) {
                    text.push(char::from(
                        alphabet[rng.below(alphabet.len() as u64) as usize],
                    ));
                }
            } else {
                match rng.below(4) {
                    0 => text.push('-'),
                    1 => text.push('+'),
                    _ => {}
                }
                let int_bound = if rng.below(8) == 0 { 40 } else { 20 };
                let int_digits = rng.below(int_bound);
                for _ in 0..int_digits {
                    text.push(char::from(b'0' + rng.below(10) as u8));
                }
                if rng.below(2) == 0 {
                    text.push('.');
                    for _ in 0..rng.below(25) {
                        text.push(char::from(b'0' + rng.below(10) as u8));
                    }
                }
                if rng.below(3) == 0 {
                    text.push(if rng.below(2) == 0 { 'e' } else { 'E' });
                    match rng.below(3) {
                        0 => text.push('-'),
                        1 => text.push('+'),
                        _ => {}
                    }
                    let exponent_bound = if rng.below(4) == 0 { 400 } else { 40 };
                    let exponent = rng.below(exponent_bound);
                    text.push_str(&format!("{exponent}"));
                }
            }
            check(&text);
        }
    }

    #[test]
    fn round_trips_every_kind_of_f64() {
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        for _ in 0..ROUNDS {
            let value = f64::from_bits(rng.next());
            if !value.is_finite() {
                continue;
            }
            // Shortest round-trip text, its exponent form, and a neighbour with extra digits.
            check(&format!("{value}"));
            check(&format!("{value:e}"));
            check(&format!("{value:.30e}"));
            check(&format!("{value:.17e}"));
        }
    }
}
