//! 256-entry lookup tables: every unary nonlinearity (ReLU, sigmoid, tanh,
//! hard-swish, ...) after quantization.

/// `y[i] = table[x[i] + 128]`.
///
/// Processes `min(input.len(), output.len())` elements (the interpreter
/// passes equal lengths).
pub fn lut_s8(table: &[i8; 256], input: &[i8], output: &mut [i8]) {
    for (y, &x) in output.iter_mut().zip(input) {
        *y = table[index(x)];
    }
}

/// In-place variant of [`lut_s8`].
pub fn lut_in_place_s8(table: &[i8; 256], data: &mut [i8]) {
    for v in data.iter_mut() {
        *v = table[index(*v)];
    }
}

/// Entries of an int16 table: 512 segments of 128 input steps, and the
/// value one past the last.
#[cfg(feature = "int16-activations")]
pub const LUT_S16_ENTRIES: usize = 513;

/// An int16 nonlinearity by linear interpolation in a table of
/// [`LUT_S16_ENTRIES`] (TFLite's int16 LUT): with `u = x + 32768`,
/// `k = u >> 7` and `f = u & 127`,
/// `y = t[k] + ((t[k+1] − t[k])·f + 64) >> 7` (the shift an arithmetic one,
/// so halves round up), exact in `i32`. The converter computes `t[k]` as the
/// output at input `k·128 − 32768` on the int16 grids, so the result is the
/// same on every target.
///
/// Returns early, leaving `output` unchanged, unless `output` is as long as
/// `input` and every entry lies within `i16`.
#[cfg(feature = "int16-activations")]
pub fn lut_s16(table: &[i32; LUT_S16_ENTRIES], input: &[i16], output: &mut [i16]) {
    let in_i16 = |&v: &i32| (-32768..=32767).contains(&v);
    if output.len() != input.len() || !table.iter().all(in_i16) {
        return;
    }
    for (y, &x) in output.iter_mut().zip(input) {
        let u = usize::from((x as u16) ^ 0x8000);
        let (k, f) = (u >> 7, (u & 127) as i32);
        // k <= 511, so both entries exist; unwrap_or keeps the totality
        // visible to the compiler.
        let a = table.get(k).copied().unwrap_or(0);
        let b = table.get(k + 1).copied().unwrap_or(0);
        // |b − a| <= 65535, so the product stays below 2^23.
        let v = a + (((b - a) * f + 64) >> 7);
        *y = v.clamp(-32768, 32767) as i16;
    }
}

/// `x + 128` as a table index. Flipping the sign bit of the two's-complement
/// byte is that addition, and a `u8` index into 256 entries cannot be out of bounds.
#[inline(always)]
fn index(x: i8) -> usize {
    usize::from((x as u8) ^ 0x80)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table whose entry i is f(i − 128), so tests can state f directly.
    fn table(f: impl Fn(i32) -> i32) -> [i8; 256] {
        let mut t = [0i8; 256];
        for (i, e) in t.iter_mut().enumerate() {
            *e = f(i as i32 - 128).clamp(-128, 127) as i8;
        }
        t
    }

    #[test]
    fn index_is_x_plus_128() {
        assert_eq!(index(-128), 0);
        assert_eq!(index(-1), 127);
        assert_eq!(index(0), 128);
        assert_eq!(index(127), 255);
    }

    #[test]
    fn relu_with_zero_point() {
        // ReLU at zero point −20 (same scale in and out): y = max(x, −20).
        let t = table(|x| x.max(-20));
        let mut y = [0i8; 5];
        lut_s8(&t, &[-128, -21, -20, 0, 127], &mut y);
        assert_eq!(y, [-20, -20, -20, 0, 127]);
    }

    #[test]
    fn arbitrary_table_including_ends() {
        // Negation saturated: −(−128) = 128 -> 127.
        let t = table(|x| -x);
        let mut y = [0i8; 4];
        lut_s8(&t, &[-128, -1, 1, 127], &mut y);
        assert_eq!(y, [127, 1, -1, -127]);
    }

    #[test]
    fn in_place_matches_out_of_place() {
        let t = table(|x| x / 2 + 3);
        // −128/2 + 3 = −61; −7/2 + 3 = −3 + 3 = 0 (truncation); 0 + 3 = 3; 127/2 + 3 = 66
        let mut d = [-128i8, -7, 0, 127];
        lut_in_place_s8(&t, &mut d);
        assert_eq!(d, [-61, 0, 3, 66]);
    }

    #[test]
    fn mismatched_lengths_process_the_common_prefix() {
        let t = table(|x| x + 1);
        let mut y = [0i8; 3];
        lut_s8(&t, &[1, 2], &mut y);
        assert_eq!(y, [2, 3, 0]);
    }
}
