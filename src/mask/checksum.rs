//! Checksums and number-plan tables: the arithmetic that tells a card number,
//! an SSN or an IBAN from an order number that merely looks like one.
//!
//! Everything here takes ASCII text already cut out of a line and answers
//! yes or no; it never allocates. Input that is not of the expected shape
//! (a letter in a card number, a string too long) is simply "no".

/// Luhn (mod 10) over the ASCII digits of `digits`, ignoring nothing: any
/// non-digit makes it fail. Fewer than two digits never passes, so an empty
/// or one-digit capture in a custom rule cannot "pass by accident".
pub fn luhn(digits: &str) -> bool {
    if digits.len() < 2 {
        return false;
    }
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        if !b.is_ascii_digit() {
            return false;
        }
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

/// The card brands whose number ranges we know, with the lengths each issues.
/// Ranges are on the leading digits (the IIN); a number outside every range
/// is not treated as a card even if it passes Luhn, which is what keeps
/// one in ten random digit runs (the Luhn pass rate) visible.
const CARD_RANGES: &[(u32, u32, u32, &[usize])] = &[
    // (prefix length, low, high, lengths)
    (1, 4, 4, &[13, 16, 19]),                              // Visa
    (2, 51, 55, &[16]),                                    // Mastercard
    (4, 2221, 2720, &[16]),                                // Mastercard 2-series
    (2, 34, 34, &[15]),                                    // American Express
    (2, 37, 37, &[15]),                                    // American Express
    (4, 6011, 6011, &[16, 17, 18, 19]),                    // Discover
    (3, 644, 649, &[16, 17, 18, 19]),                      // Discover
    (2, 65, 65, &[16, 17, 18, 19]),                        // Discover
    (4, 3528, 3589, &[16, 17, 18, 19]),                    // JCB
    (3, 300, 305, &[14, 15, 16, 17, 18, 19]),              // Diners Club
    (4, 3095, 3095, &[14, 15, 16, 17, 18, 19]),            // Diners Club
    (2, 36, 36, &[14, 15, 16, 17, 18, 19]),                // Diners Club
    (2, 38, 39, &[14, 15, 16, 17, 18, 19]),                // Diners Club
    (2, 62, 62, &[16, 17, 18, 19]),                        // UnionPay
    (4, 5018, 5018, &[13, 14, 15, 16, 17, 18, 19]),        // Maestro
    (4, 5020, 5020, &[13, 14, 15, 16, 17, 18, 19]),        // Maestro
    (4, 5038, 5038, &[13, 14, 15, 16, 17, 18, 19]),        // Maestro
    (4, 5893, 5893, &[13, 14, 15, 16, 17, 18, 19]),        // Maestro
    (4, 6304, 6304, &[13, 14, 15, 16, 17, 18, 19]),        // Maestro
    (4, 6759, 6759, &[13, 14, 15, 16, 17, 18, 19]),        // Maestro
    (4, 6761, 6763, &[13, 14, 15, 16, 17, 18, 19]),        // Maestro
    (4, 2200, 2204, &[16, 17, 18, 19]),                    // Mir
];

/// Leading `n` digits of `digits` as a number, if there are that many.
fn leading(digits: &[u8], n: u32) -> Option<u32> {
    let n = usize::try_from(n).ok()?;
    let head = digits.get(..n)?;
    head.iter().try_fold(0u32, |acc, b| b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0')))
}

/// A known issuer range and length for `digits` (ASCII digits only, no
/// separators). Does not check Luhn.
pub fn card_issuer_known(digits: &str) -> bool {
    let bytes = digits.as_bytes();
    CARD_RANGES.iter().any(|&(n, low, high, lengths)| {
        lengths.contains(&bytes.len()) && leading(bytes, n).is_some_and(|p| (low..=high).contains(&p))
    })
}

/// Could a digit run starting with `digits` (at least one digit) grow into a
/// card number? Used by the hold-back window, so it errs towards yes within
/// the known leading digits.
pub fn card_could_start(digits: &str) -> bool {
    let bytes = digits.as_bytes();
    if bytes.len() > 19 {
        return false;
    }
    CARD_RANGES.iter().any(|&(n, low, high, _)| {
        // Compare only the digits we have so far against the range's prefix.
        let have = u32::try_from(bytes.len()).unwrap_or(u32::MAX).min(n);
        let Some(p) = leading(bytes, have) else { return false };
        let scale = 10u32.pow(n - have);
        (low / scale..=high / scale).contains(&p)
    })
}

/// A full card check: known issuer range and length, and Luhn.
pub fn is_card_number(digits: &str) -> bool {
    card_issuer_known(digits) && luhn(digits)
}

/// US Social Security number rules (SSA, since 2011 randomisation): area
/// 001-899 except 666, group 01-99, serial 0001-9999. Takes the three parts
/// as ASCII digits.
pub fn ssn_valid(area: &str, group: &str, serial: &str) -> bool {
    let num = |s: &str, len: usize| -> Option<u32> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
    };
    let (Some(a), Some(g), Some(s)) = (num(area, 3), num(group, 2), num(serial, 4)) else {
        return false;
    };
    a != 0 && a != 666 && a < 900 && g != 0 && s != 0
}

/// IBAN lengths by country (ISO 13616 registry). A country not listed is not
/// an IBAN country, which rejects most two-letter-plus-digits look-alikes.
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24), ("AE", 23), ("AL", 28), ("AT", 20), ("AZ", 28), ("BA", 20), ("BE", 16),
    ("BG", 22), ("BH", 22), ("BI", 27), ("BR", 29), ("BY", 28), ("CH", 21), ("CR", 22),
    ("CY", 28), ("CZ", 24), ("DE", 22), ("DJ", 27), ("DK", 18), ("DO", 28), ("EE", 20),
    ("EG", 29), ("ES", 24), ("FI", 18), ("FK", 18), ("FO", 18), ("FR", 27), ("GB", 22),
    ("GE", 22), ("GI", 23), ("GL", 18), ("GR", 27), ("GT", 28), ("HN", 28), ("HR", 21),
    ("HU", 28), ("IE", 22), ("IL", 23), ("IQ", 23), ("IS", 26), ("IT", 27), ("JO", 30),
    ("KW", 30), ("KZ", 20), ("LB", 28), ("LC", 32), ("LI", 21), ("LT", 20), ("LU", 20),
    ("LV", 21), ("LY", 25), ("MC", 27), ("MD", 24), ("ME", 22), ("MK", 19), ("MN", 20),
    ("MR", 27), ("MT", 31), ("MU", 30), ("NI", 28), ("NL", 18), ("NO", 15), ("OM", 23),
    ("PK", 24), ("PL", 28), ("PS", 29), ("PT", 25), ("QA", 29), ("RO", 24), ("RS", 22),
    ("RU", 33), ("SA", 24), ("SC", 31), ("SD", 18), ("SE", 24), ("SI", 19), ("SK", 24),
    ("SM", 27), ("SO", 23), ("ST", 25), ("SV", 28), ("TL", 23), ("TN", 24), ("TR", 26),
    ("UA", 29), ("VA", 22), ("VG", 24), ("XK", 20), ("YE", 30),
];

/// The IBAN length for a two-letter country code, if it issues IBANs.
pub fn iban_length(country: &[u8]) -> Option<usize> {
    IBAN_LENGTHS.iter().find(|(c, _)| c.as_bytes() == country).map(|&(_, n)| n)
}

/// ISO 7064 mod 97-10 as IBANs use it: move the first four characters to the
/// end, read letters as 10..35, and the remainder must be 1. `text` is the
/// compact form (no spaces); any character other than a digit or an ASCII
/// letter fails. Works digit by digit, so length is unbounded.
pub fn mod97(text: &str) -> bool {
    if text.len() < 5 {
        return false;
    }
    let (head, tail) = text.split_at(4);
    let mut rem = 0u32;
    for b in tail.bytes().chain(head.bytes()) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            b'a'..=b'z' => u32::from(b - b'a') + 10,
            _ => return false,
        };
        rem = if v >= 10 { (rem * 100 + v) % 97 } else { (rem * 10 + v) % 97 };
    }
    rem == 1
}

/// A full IBAN check on the compact form: known country, its exact length,
/// digits in the check position, alphanumeric body, and mod 97.
pub fn is_iban(compact: &str) -> bool {
    let b = compact.as_bytes();
    let (Some(country), Some(check)) = (b.get(..2), b.get(2..4)) else { return false };
    country.iter().all(u8::is_ascii_uppercase)
        && check.iter().all(u8::is_ascii_digit)
        && iban_length(country) == Some(b.len())
        && b.iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && mod97(compact)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("4111111111111111", true)]
    #[case("4111111111111112", false)]
    #[case("79927398713", true)]
    #[case("79927398710", false)]
    #[case("0", false)]
    #[case("", false)]
    #[case("4111-1111", false)]
    fn luhn_table(#[case] s: &str, #[case] ok: bool) {
        assert_eq!(luhn(s), ok);
    }

    #[rstest]
    #[case::visa("4111111111111111", true)]
    #[case::visa13("4222222222222", true)]
    #[case::mastercard("5555555555554444", true)]
    #[case::mastercard2("2223003122003222", true)]
    #[case::amex("378282246310005", true)]
    #[case::discover("6011111111111117", true)]
    #[case::jcb("3530111333300000", true)]
    #[case::diners("30569309025904", true)]
    #[case::unionpay("6200000000000005", true)]
    #[case::amex_wrong_length("3782822463100050", false)]
    #[case::unknown_iin("9111111111111119", false)]
    #[case::luhn_fails("4111111111111121", false)]
    #[case::epoch_millis("1732622400000", false)]
    fn card_table(#[case] s: &str, #[case] ok: bool) {
        assert_eq!(is_card_number(s), ok, "{s}");
    }

    #[rstest]
    #[case("4", true)]
    #[case("41", true)]
    #[case("22", true)]
    #[case("2721", false)]
    #[case("1", false)]
    #[case("9", false)]
    #[case("35", true)]
    #[case("3527", false)]
    fn card_prefixes(#[case] s: &str, #[case] ok: bool) {
        assert_eq!(card_could_start(s), ok, "{s}");
    }

    #[rstest]
    #[case("123", "45", "6789", true)]
    #[case("000", "45", "6789", false)]
    #[case("666", "45", "6789", false)]
    #[case("900", "45", "6789", false)]
    #[case("999", "45", "6789", false)]
    #[case("123", "00", "6789", false)]
    #[case("123", "45", "0000", false)]
    #[case("899", "99", "9999", true)]
    fn ssn_table(#[case] a: &str, #[case] g: &str, #[case] s: &str, #[case] ok: bool) {
        assert_eq!(ssn_valid(a, g, s), ok);
    }

    #[rstest]
    #[case("DE89370400440532013000", true)]
    #[case("GB82WEST12345698765432", true)]
    #[case("NO9386011117947", true)]
    #[case("FR1420041010050500013M02606", true)]
    #[case("DE89370400440532013001", false)]
    #[case("DE8937040044053201300", false)]
    #[case("XX89370400440532013000", false)]
    #[case("de89370400440532013000", false)]
    fn iban_table(#[case] s: &str, #[case] ok: bool) {
        assert_eq!(is_iban(s), ok, "{s}");
    }
}
