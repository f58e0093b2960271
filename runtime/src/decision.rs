//! The abstain rule: a classifier's top-1 class, or "uncertain" when the
//! top-1 probability beats the runner-up by less than the model's minimum
//! margin ([`Model::abstain_margin`](crate::Model::abstain_margin), stored by
//! the converter's `--abstain-margin`).
#![forbid(unsafe_code)]

/// What to report for one output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Decision {
    /// The top-1 class: its margin over the runner-up is at least the
    /// minimum (or the model has none).
    Class(usize),
    /// The margin is below the minimum: no class is reported.
    Uncertain,
}

/// The top-1 class of an output and how far it leads.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Top1 {
    /// The index of the largest value, the first on ties. A single value
    /// `p` is a binary probability: class 1 when `p ≥ 0.5`.
    pub class: usize,
    /// Largest minus second-largest value (0 on a tie); `|2p − 1|` for a
    /// single probability `p` (the probabilities are `1 − p` and `p`).
    pub margin: f32,
}

/// The top-1 class of `scores` (probabilities, for margins to mean
/// anything); `None` if there are none.
pub fn top1(scores: impl IntoIterator<Item = f32>) -> Option<Top1> {
    let mut scores = scores.into_iter();
    let first = scores.next()?;
    let (mut class, mut best, mut second) = (0, first, f32::NEG_INFINITY);
    let mut count = 1;
    for (i, v) in scores.enumerate() {
        count += 1;
        if v > best {
            (class, second, best) = (i + 1, best, v);
        } else if v > second {
            second = v;
        }
    }
    if count == 1 {
        let p = first;
        return Some(Top1 {
            class: usize::from(p >= 0.5),
            margin: (2.0 * p - 1.0).abs(),
        });
    }
    Some(Top1 {
        class,
        margin: best - second,
    })
}

/// [`Decision::Uncertain`] when `top.margin` is below `min_margin`, else
/// the class. Without a minimum every output gets its class.
pub fn decide(top: Top1, min_margin: Option<f32>) -> Decision {
    match min_margin {
        Some(min) if top.margin < min => Decision::Uncertain,
        _ => Decision::Class(top.class),
    }
}

/// Reads an abstain margin as the file stores it: `0.` then 1 to 6
/// decimal digits, not all zero (so `0 < margin < 1`). A fixed decimal form
/// rather than general float parsing keeps the validator small on devices.
pub fn parse_margin(text: &str) -> Option<f32> {
    let digits = text.strip_prefix("0.")?.as_bytes();
    if digits.is_empty() || digits.len() > 6 {
        return None;
    }
    let mut value: u32 = 0;
    let mut unit: u32 = 1;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(d - b'0');
        unit *= 10;
    }
    // Both below 2^24, so exact in f32; the quotient is rounded once.
    (value > 0).then(|| value as f32 / unit as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top1_takes_the_first_largest_and_its_lead() {
        let t = top1([0.1, 0.6, 0.25, 0.05]).unwrap();
        assert_eq!(t.class, 1);
        assert!((t.margin - 0.35).abs() < 1e-6);
        assert_eq!(
            top1([0.4, 0.2, 0.4]),
            Some(Top1 {
                class: 0,
                margin: 0.0
            })
        );
        assert_eq!(
            top1([0.25, 0.75]),
            Some(Top1 {
                class: 1,
                margin: 0.5
            })
        );
        assert_eq!(
            top1([0.75]),
            Some(Top1 {
                class: 1,
                margin: 0.5
            })
        );
        assert_eq!(
            top1([0.25]),
            Some(Top1 {
                class: 0,
                margin: 0.5
            })
        );
        assert_eq!(
            top1([0.5]),
            Some(Top1 {
                class: 1,
                margin: 0.0
            })
        );
        assert_eq!(top1(core::iter::empty()), None);
    }

    #[test]
    fn below_the_margin_is_uncertain_at_it_is_a_class() {
        let t = Top1 {
            class: 3,
            margin: 0.25,
        };
        assert_eq!(decide(t, None), Decision::Class(3));
        assert_eq!(decide(t, Some(0.25)), Decision::Class(3));
        assert_eq!(decide(t, Some(0.2500001)), Decision::Uncertain);
        assert_eq!(decide(t, Some(0.1)), Decision::Class(3));
    }

    #[test]
    fn margins_are_read_in_their_one_decimal_form() {
        assert_eq!(parse_margin("0.25"), Some(0.25));
        assert_eq!(parse_margin("0.1"), Some(0.1));
        assert_eq!(parse_margin("0.000001"), Some(0.000001));
        assert_eq!(parse_margin("0.999999"), Some(0.999999));
        for bad in [
            "",
            "0",
            "0.",
            "0.0",
            "0.000000",
            "1.0",
            "1",
            ".5",
            "0.5 ",
            " 0.5",
            "0.1234567",
            "0.-1",
            "0.+1",
            "0.1e1",
            "NaN",
            "inf",
            "-0.5",
            "0,5",
        ] {
            assert_eq!(parse_margin(bad), None, "{bad:?}");
        }
    }
}
