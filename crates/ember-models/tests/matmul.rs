//! Matrix products on flex write every element of their output. ember's patched burn-flex
//! (vendor/burn-flex) leaves the output of an f32 product unzeroed and relies on gemm writing
//! all of it; here each product runs right after a buffer of NaNs of the output's size was
//! freed, so that the allocator is likely to hand that memory back, and must equal a product
//! computed by hand, with no NaN. The shapes reach gemm's paths: empty inner dimension,
//! matrix-vector (one row or one column), the small "horizontal" kernels, blocked kernels with
//! edge tiles, the threaded path, and transposed (strided) operands; batched products (3-D,
//! as ember's split dense layers run) reach the serial, batch-parallel and gemm-threaded loops,
//! with the right side broadcast over the batch or not.

use burn::prelude::*;

/// Values that differ per element, multiples of 1/8 in [-1, 1]: their products are multiples
/// of 1/64 and every partial sum below is exact in f32 (|sum| < 2^24 / 64), so any summation
/// order gives the exact product.
fn values(rows: usize, cols: usize, salt: usize) -> Vec<f32> {
    (0..rows * cols)
        .map(|i| ((i * 7 + salt * 13) % 17) as f32 / 8.0 - 1.0)
        .collect()
}

fn product_by_hand(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k)
                .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                .sum();
        }
    }
    out
}

/// Frees a NaN-filled buffer of `len` f32 so that the next allocation of that size is likely
/// to reuse it.
fn leave_nans_behind(len: usize) {
    let garbage = vec![f32::NAN; len.max(1)];
    std::hint::black_box(&garbage);
    drop(garbage);
}

fn check(m: usize, k: usize, n: usize, transposed: bool) {
    let device = Device::flex();
    let (a, b) = (values(m, k, 1), values(k, n, 2));
    let expected = product_by_hand(&a, &b, m, k, n);
    let lhs = if transposed {
        // The same m × k matrix, stored k × m and transposed: a strided operand.
        let stored: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        Tensor::<2>::from_data(TensorData::new(stored, [k, m]), &device).transpose()
    } else {
        Tensor::<2>::from_data(TensorData::new(a, [m, k]), &device)
    };
    let rhs = Tensor::<2>::from_data(TensorData::new(b, [k, n]), &device);
    leave_nans_behind(m * n);
    let product = lhs.matmul(rhs);
    assert_eq!(product.dims(), [m, n]);
    let got = product.into_data().try_to_vec::<f32>().unwrap();
    assert_exact(
        &got,
        &expected,
        &format!("{m}x{k} · {k}x{n} (lhs transposed: {transposed})"),
    );
}

/// Every element of `got` equals the exact product `expected`.
fn assert_exact(got: &[f32], expected: &[f64], product: &str) {
    assert_eq!(got.len(), expected.len(), "{product}: output size");
    for (index, (&got, &want)) in got.iter().zip(expected).enumerate() {
        assert!(
            got as f64 == want,
            "{product}: element {index} is {got}, expected {want}"
        );
    }
}

#[test]
fn flex_products_write_every_output_element() {
    let shapes = [
        (3, 0, 4),      // empty inner dimension: all zeros
        (1, 37, 50),    // one row
        (50, 37, 1),    // one column
        (4, 300, 4),    // small output, long inner dimension
        (7, 5, 3),      // tiny
        (33, 17, 29),   // edge tiles on both sides
        (512, 64, 300), // threaded
        (4096, 128, 64),
        (2000, 1100, 9), // inner dimension past one cache block
    ];
    for (m, k, n) in shapes {
        for transposed in [false, true] {
            check(m, k, n, transposed);
        }
    }
}

fn check_batched(batch: usize, m: usize, k: usize, n: usize, broadcast_rhs: bool) {
    let device = Device::flex();
    let a = values(batch * m, k, 3);
    let rhs_batch = if broadcast_rhs { 1 } else { batch };
    let b = values(rhs_batch * k, n, 4);
    let lhs = Tensor::<3>::from_data(TensorData::new(a.clone(), [batch, m, k]), &device);
    let rhs = Tensor::<3>::from_data(TensorData::new(b.clone(), [rhs_batch, k, n]), &device);
    leave_nans_behind(batch * m * n);
    let product = lhs.matmul(rhs);
    assert_eq!(product.dims(), [batch, m, n]);
    let got = product.into_data().try_to_vec::<f32>().unwrap();
    for i in 0..batch {
        let a_i = &a[i * m * k..(i + 1) * m * k];
        let j = if broadcast_rhs { 0 } else { i };
        let b_j = &b[j * k * n..(j + 1) * k * n];
        let expected = product_by_hand(a_i, b_j, m, k, n);
        assert_exact(
            &got[i * m * n..(i + 1) * m * n],
            &expected,
            &format!("{batch}x{m}x{k} · {rhs_batch}x{k}x{n}, batch {i}"),
        );
    }
}

#[test]
fn flex_batched_products_write_every_output_element() {
    let shapes = [
        (2, 3, 0, 4),     // empty inner dimension: all zeros
        (3, 7, 5, 3),     // serial loop over the batch
        (64, 64, 32, 33), // batch-parallel loop (ember's split-k dense layers)
        (16, 256, 64, 8),
        (2, 200, 200, 200), // each product threaded by gemm
    ];
    for (batch, m, k, n) in shapes {
        for broadcast_rhs in [false, true] {
            check_batched(batch, m, k, n, broadcast_rhs);
        }
    }
}
