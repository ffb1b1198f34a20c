//! Precision conversions: IEEE half floats and symmetric per-row int8.

/// Converts an f32 to IEEE 754 binary16 bits (round to nearest even; overflow to infinity).
pub fn f32_to_f16(value: f32) -> u16 {
    let bits = value.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exponent = ((bits >> 23) & 0xff) as i32;
    let mantissa = bits & 0x007f_ffff;
    if exponent == 0xff {
        // Infinity or NaN (keep NaN a NaN).
        return sign | 0x7c00 | if mantissa != 0 { 0x0200 } else { 0 };
    }
    let unbiased = exponent - 127;
    if unbiased > 15 {
        return sign | 0x7c00;
    }
    if unbiased >= -14 {
        // Normal half: 10 mantissa bits, round to nearest even on the 13 dropped bits.
        let half_exponent = ((unbiased + 15) as u32) << 10;
        let mut half = half_exponent | (mantissa >> 13);
        let rest = mantissa & 0x1fff;
        if rest > 0x1000 || (rest == 0x1000 && half & 1 == 1) {
            half += 1; // may carry into the exponent, which is the correct rounding
        }
        return sign | half as u16;
    }
    if unbiased >= -25 {
        // Subnormal half.
        let full = mantissa | 0x0080_0000;
        let shift = (-14 - unbiased + 13) as u32;
        let mut half = full >> shift;
        let rest = full & ((1 << shift) - 1);
        let halfway = 1 << (shift - 1);
        if rest > halfway || (rest == halfway && half & 1 == 1) {
            half += 1;
        }
        return sign | half as u16;
    }
    sign
}

/// Converts IEEE 754 binary16 bits to an f32 (exact).
pub fn f16_to_f32(half: u16) -> f32 {
    let sign = ((half & 0x8000) as u32) << 16;
    let exponent = ((half >> 10) & 0x1f) as u32;
    let mantissa = (half & 0x03ff) as u32;
    let bits = match (exponent, mantissa) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: value = m × 2^-24.
            let value = m as f32 * f32::from_bits(0x3380_0000); // 2^-24
            return if sign != 0 { -value } else { value };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// Symmetric per-row int8 quantisation of a `[rows, cols]` matrix: returns the int8 values and
/// one scale per row (`value ≈ q × scale`, `scale = max|row| / 127`).
pub(crate) fn quantize_rows(data: &[f32], cols: usize) -> (Vec<i8>, Vec<f32>) {
    let mut quantized = Vec::with_capacity(data.len());
    let mut scales = Vec::with_capacity(data.len() / cols.max(1));
    for row in data.chunks(cols.max(1)) {
        let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        scales.push(scale);
        quantized.extend(
            row.iter()
                .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8),
        );
    }
    (quantized, scales)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_round_trips_representable_values() {
        for v in [
            0.0f32,
            -0.0,
            1.0,
            -2.5,
            0.099975586,
            65504.0,
            6.1035156e-5,
            5.9604645e-8,
            -3.0517578e-5,
        ] {
            assert_eq!(f16_to_f32(f32_to_f16(v)), v, "{v}");
        }
        assert_eq!(f32_to_f16(1.0), 0x3c00);
        assert_eq!(f32_to_f16(-2.0), 0xc000);
        assert!(f16_to_f32(f32_to_f16(1e6)).is_infinite());
        assert!(f16_to_f32(f32_to_f16(f32::NAN)).is_nan());
        // 1 + 2^-11 is halfway between 1 and the next half: ties to even (1.0).
        assert_eq!(f32_to_f16(1.0 + 2f32.powi(-11)), 0x3c00);
        assert_eq!(f32_to_f16(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
    }

    #[test]
    fn half_relative_error_is_small() {
        let mut x = 1e-3f32;
        while x < 1e4 {
            let back = f16_to_f32(f32_to_f16(x));
            assert!(((back - x) / x).abs() <= 2f32.powi(-11), "{x} -> {back}");
            x *= 1.37;
        }
    }

    #[test]
    fn int8_rows_have_their_own_scale() {
        let data = [1.0, -0.5, 0.25, 100.0, 50.0, -100.0, 0.0, 0.0, 0.0];
        let (q, s) = quantize_rows(&data, 3);
        assert_eq!(s.len(), 3);
        assert_eq!(q[0], 127);
        assert_eq!(q[5], -127);
        for (i, v) in data.iter().enumerate() {
            let back = q[i] as f32 * s[i / 3];
            assert!((back - v).abs() <= s[i / 3] / 2.0 + 1e-6);
        }
    }
}
