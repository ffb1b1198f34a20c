//! The inner loop of top-k: one query against every row of an item table.
//!
//! Scoring a 100k-item catalogue is 100k short dot products, so the loop is written for the
//! compiler to vectorise (eight independent accumulators), and on x86-64 CPUs with AVX2 and FMA
//! an explicit AVX2 loop is chosen at run time (the default target only has SSE2, which halves
//! the width).

/// Sums eight lanes as a tree (depth 3, not a chain of 8), which keeps per-row overhead low.
#[inline(always)]
pub(crate) fn pairwise_sum(acc: &[f32; 8]) -> f32 {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// `Σ a[j] · b[j]`, with `b` converted to f32 on the fly (f32 or int8 rows).
#[inline(always)]
fn dot_generic<T: Copy + Into<f32>>(a: &[f32], b: &[T]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (a8, a_rest) = a.split_at(a.len() / 8 * 8);
    let (b8, b_rest) = b.split_at(a8.len());
    for (x, y) in a8.chunks_exact(8).zip(b8.chunks_exact(8)) {
        for j in 0..8 {
            acc[j] += x[j] * y[j].into();
        }
    }
    let rest: f32 = a_rest
        .iter()
        .zip(b_rest)
        .map(|(x, y)| x * (*y).into())
        .sum();
    pairwise_sum(&acc) + rest
}

/// Dot product of two f32 slices of equal length.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_generic(a, b)
}

/// `out[r] = query · rows[r] · scale[r]` (no scale: 1) for every row of the row-major table.
#[inline(always)]
fn dot_rows_generic<T: Copy + Into<f32>>(
    query: &[f32],
    rows: &[T],
    scale: Option<&[f32]>,
    out: &mut [f32],
) {
    let cols = query.len();
    for (r, (o, row)) in out.iter_mut().zip(rows.chunks_exact(cols)).enumerate() {
        let s = dot_generic(query, row);
        *o = match scale {
            Some(scale) => s * scale[r],
            None => s,
        };
    }
}

/// Explicit AVX2 + FMA: four rows at a time, so four independent accumulator chains hide the
/// FMA latency, and their horizontal sums share three `hadd`s. (Left to itself, the compiler
/// vectorised the portable loop across the wrong axis, 4 lanes wide with shuffles.)
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Eight row values as f32 lanes.
    pub(super) trait Load8: Copy + Into<f32> {
        /// # Safety
        /// `p` must be valid for reading eight values; the CPU must have AVX2.
        unsafe fn load8(p: *const Self) -> __m256;
    }

    impl Load8 for f32 {
        #[inline(always)]
        unsafe fn load8(p: *const f32) -> __m256 {
            unsafe { _mm256_loadu_ps(p) }
        }
    }

    impl Load8 for i8 {
        #[inline(always)]
        unsafe fn load8(p: *const i8) -> __m256 {
            unsafe {
                _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(p as *const __m128i)))
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dot_rows<T: Load8>(
        query: &[f32],
        rows: &[T],
        scale: Option<&[f32]>,
        out: &mut [f32],
    ) {
        let cols = query.len();
        let lanes = cols / 8 * 8;
        let n = out.len();
        assert!(rows.len() >= n * cols);
        let q = query.as_ptr();
        let tail = |r: usize| -> f32 {
            (lanes..cols)
                .map(|j| query[j] * rows[r * cols + j].into())
                .sum()
        };
        let mut r = 0;
        while r + 4 <= n {
            // SAFETY: rows r..r+4 lie inside `rows` (asserted above), lanes < cols.
            let sums = unsafe {
                let base = rows.as_ptr().add(r * cols);
                let (mut a0, mut a1, mut a2, mut a3) = (
                    _mm256_setzero_ps(),
                    _mm256_setzero_ps(),
                    _mm256_setzero_ps(),
                    _mm256_setzero_ps(),
                );
                let mut j = 0;
                while j < lanes {
                    let x = _mm256_loadu_ps(q.add(j));
                    a0 = _mm256_fmadd_ps(x, T::load8(base.add(j)), a0);
                    a1 = _mm256_fmadd_ps(x, T::load8(base.add(cols + j)), a1);
                    a2 = _mm256_fmadd_ps(x, T::load8(base.add(2 * cols + j)), a2);
                    a3 = _mm256_fmadd_ps(x, T::load8(base.add(3 * cols + j)), a3);
                    j += 8;
                }
                // [a0 a0 a1 a1 | a0 a0 a1 a1] pairs, then quads, then the two 128-bit halves.
                let h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
                let s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
                let mut sums = [0.0f32; 4];
                _mm_storeu_ps(sums.as_mut_ptr(), s);
                sums
            };
            for k in 0..4 {
                let s = sums[k] + tail(r + k);
                out[r + k] = match scale {
                    Some(scale) => s * scale[r + k],
                    None => s,
                };
            }
            r += 4;
        }
        for r in r..n {
            let s = super::dot_generic(query, &rows[r * cols..(r + 1) * cols]);
            out[r] = match scale {
                Some(scale) => s * scale[r],
                None => s,
            };
        }
    }
}

fn dot_rows_dispatch<T: Copy + Into<f32> + DispatchLoad>(
    query: &[f32],
    rows: &[T],
    scale: Option<&[f32]>,
    out: &mut [f32],
) {
    assert!(!query.is_empty() && rows.len() == out.len() * query.len());
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features this copy of the loop was compiled for.
        return unsafe { avx2::dot_rows(query, rows, scale, out) };
    }
    dot_rows_generic(query, rows, scale, out)
}

/// Row types the AVX2 kernel can load (all of them on other targets).
#[cfg(target_arch = "x86_64")]
trait DispatchLoad: avx2::Load8 {}
#[cfg(target_arch = "x86_64")]
impl<T: avx2::Load8> DispatchLoad for T {}
#[cfg(not(target_arch = "x86_64"))]
trait DispatchLoad {}
#[cfg(not(target_arch = "x86_64"))]
impl<T> DispatchLoad for T {}

/// `out[r] = query · rows[r]` for an f32 table of `out.len()` rows.
pub(crate) fn dot_rows_f32(query: &[f32], rows: &[f32], out: &mut [f32]) {
    dot_rows_dispatch(query, rows, None, out)
}

/// `out[r] = (query · q[r]) · scale[r]` for an int8 table of `out.len()` rows.
pub(crate) fn dot_rows_i8(query: &[f32], q: &[i8], scale: &[f32], out: &mut [f32]) {
    assert_eq!(scale.len(), out.len());
    dot_rows_dispatch(query, q, Some(scale), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_scores_equal_plain_dot_products() {
        // 19 columns: two full lanes of 8 and a remainder of 3.
        let cols = 19;
        let query: Vec<f32> = (0..cols).map(|j| (j as f32 - 9.0) * 0.25).collect();
        let rows: Vec<f32> = (0..5 * cols).map(|x| ((x * 7) % 11) as f32 - 5.0).collect();
        let mut out = vec![0.0; 5];
        dot_rows_f32(&query, &rows, &mut out);
        for r in 0..5 {
            let expected: f32 = (0..cols).map(|j| query[j] * rows[r * cols + j]).sum();
            assert!(
                (out[r] - expected).abs() < 1e-4,
                "row {r}: {} vs {expected}",
                out[r]
            );
        }
        let q: Vec<i8> = rows.iter().map(|&x| x as i8).collect();
        let scale = [1.0, 0.5, 2.0, 0.25, 4.0];
        dot_rows_i8(&query, &q, &scale, &mut out);
        for r in 0..5 {
            let expected: f32 = (0..cols)
                .map(|j| query[j] * rows[r * cols + j])
                .sum::<f32>()
                * scale[r];
            assert!(
                (out[r] - expected).abs() < 1e-3,
                "row {r}: {} vs {expected}",
                out[r]
            );
        }
    }
}
