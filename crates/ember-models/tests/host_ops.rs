//! ember's own backend operations (softmax cross-entropy, the sparse first layer, GELU, tanh,
//! the attention softmax) against burn's operations, values and gradients, on each backend:
//! the host kernels on Flex and NdArray, the composed operations on wgpu.

use burn::prelude::*;
use burn::tensor::Tolerance;
use burn::tensor::activation::{log_softmax, softmax};
use ember_models::UserRows;
use ember_models::activation::{gelu, softmax_last, tanh};
use ember_models::cross_entropy::softmax_cross_entropy_of_rows;
use ember_models::sparse_input::sparse_times;

#[cfg(feature = "wgpu")]
mod common;

const ROWS: usize = 5;
const CLASSES: usize = 23;

/// Values with a wide range.
fn values(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 % 1013) as f32 / 1013.0 - 0.5) * 12.0)
        .collect()
}

/// `f(x)` and the gradient at `x` of `Σ cos(x) ⊙ f(x)`.
fn value_and_gradient<const D: usize>(
    x: &TensorData,
    device: &Device,
    f: impl Fn(Tensor<D>) -> Tensor<D>,
) -> (TensorData, TensorData) {
    let x = Tensor::<D>::from_data(x.clone(), device).require_grad();
    let weights = x.clone().detach().cos();
    let y = f(x.clone());
    let grad = x
        .grad(&(y.clone() * weights).sum().backward())
        .expect("x has a gradient");
    (y.into_data(), grad.into_data())
}

fn assert_close(got: (TensorData, TensorData), expected: (TensorData, TensorData), what: &str) {
    let tolerance = Tolerance::<f32>::absolute(1e-4);
    eprintln!("checking {what}");
    got.0.assert_approx_eq::<f32>(&expected.0, tolerance);
    got.1.assert_approx_eq::<f32>(&expected.1, tolerance);
}

fn check_backend(device: Device) {
    // Activations, element-wise and over the last dimension (rows of 50, masked scores).
    let x = TensorData::new(values(4 * 3 * 50), [4, 3, 50]);
    assert_close(
        value_and_gradient(&x, &device, gelu::<3>),
        // x Φ(x) from erf, whose gradient is exact (burn-ndarray's GELU backward is the
        // tanh approximation's).
        value_and_gradient(&x, &device, |x: Tensor<3>| {
            x.clone() * ((x / std::f64::consts::SQRT_2).erf() + 1.0) * 0.5
        }),
        "gelu",
    );
    assert_close(
        value_and_gradient(&x, &device, tanh::<3>),
        value_and_gradient(&x, &device, |x: Tensor<3>| x.tanh()),
        "tanh",
    );
    let masked = |x: Tensor<3>| {
        let mask = x.clone().detach().lower_elem(-4.0);
        x.mask_fill(mask, -1.0e4)
    };
    assert_close(
        value_and_gradient(&x, &device, |x| softmax_last(masked(x))),
        value_and_gradient(&x, &device, |x| softmax(masked(x), 2)),
        "softmax",
    );

    // Cross-entropy with 1, 0, 3 (one class twice), 2 and 1 targets per row.
    let targets = [4i64, 0, 22, 0, 9, 9, 13, 1];
    let target_rows = [0i64, 2, 2, 2, 3, 3, 4, 4];
    let mut counts = vec![0.0f32; ROWS * CLASSES];
    for (&t, &r) in targets.iter().zip(&target_rows) {
        counts[r as usize * CLASSES + t as usize] += 1.0;
    }
    let counts = Tensor::<2>::from_data(TensorData::new(counts, [ROWS, CLASSES]), &device);
    let logits = TensorData::new(values(ROWS * CLASSES), [ROWS, CLASSES]);
    let ints =
        |v: &[i64]| Tensor::<1, Int>::from_data(TensorData::new(v.to_vec(), [v.len()]), &device);
    let per_row = |loss: Tensor<1>| loss.reshape([ROWS, 1]).expand([ROWS, CLASSES]);
    assert_close(
        value_and_gradient(&logits, &device, |x| {
            per_row(softmax_cross_entropy_of_rows(
                x,
                ints(&targets),
                ints(&target_rows),
            ))
        }),
        value_and_gradient(&logits, &device, |x| {
            per_row(
                -(log_softmax(x, 1) * counts.clone())
                    .sum_dim(1)
                    .reshape([ROWS]),
            )
        }),
        "softmax cross-entropy",
    );

    // User rows and the sparse first layer: users with items {1, 3}, {}, {0, 2, 3}.
    let rows = UserRows {
        users: ints(&[7, 8, 9]),
        items: ints(&[1, 3, 0, 2, 3]),
        item_rows: ints(&[0, 0, 2, 2, 2]),
        num_items: 4,
        values: None,
    };
    rows.dense().into_data().assert_eq(
        &TensorData::new(
            vec![
                0.0f32, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0,
            ],
            [3, 4],
        ),
        false,
    );
    let half = 1.0 / 2f32.sqrt();
    let third = 1.0 / 3f32.sqrt();
    rows.normalised_values()
        .into_data()
        .assert_approx_eq::<f32>(
            &TensorData::new(vec![half, half, third, third, third], [5]),
            Tolerance::<f32>::absolute(1e-6),
        );
    // y = S W for W = [[1, 2], [3, 4], [5, 6], [7, 8]] and entry values 1, 2, 3, 4, 5.
    let weight = Tensor::<2>::from_data([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]], &device)
        .require_grad();
    let entry_values = Tensor::<1>::from_data([1.0, 2.0, 3.0, 4.0, 5.0], &device);
    let y = sparse_times(
        entry_values,
        rows.item_rows.clone(),
        rows.items.clone(),
        3,
        weight.clone(),
    );
    // Row 0: 1·[3, 4] + 2·[7, 8]; row 1: 0; row 2: 3·[1, 2] + 4·[5, 6] + 5·[7, 8].
    y.to_data().assert_approx_eq::<f32>(
        &TensorData::new(vec![17.0f32, 20.0, 0.0, 0.0, 58.0, 70.0], [3, 2]),
        Tolerance::<f32>::absolute(1e-5),
    );
    // ∂ Σ y ⊙ c / ∂W = Sᵀ c for c = [[1, 1], [10, 10], [2, 3]].
    let c = Tensor::<2>::from_data([[1.0, 1.0], [10.0, 10.0], [2.0, 3.0]], &device);
    let grad = weight
        .grad(&(y * c).sum().backward())
        .expect("a weight gradient");
    grad.into_data().assert_approx_eq::<f32>(
        &TensorData::new(vec![6.0f32, 9.0, 1.0, 1.0, 8.0, 12.0, 12.0, 17.0], [4, 2]),
        Tolerance::<f32>::absolute(1e-5),
    );
}

#[test]
fn host_operations_match_burns_on_flex() {
    check_backend(Device::flex().autodiff());
}

#[cfg(feature = "ndarray")]
#[test]
#[allow(deprecated)]
fn host_operations_match_burns_on_ndarray() {
    check_backend(Device::ndarray().autodiff());
}

#[cfg(feature = "wgpu")]
#[test]
fn host_operations_match_burns_on_wgpu() {
    if common::vulkan_available() {
        check_backend(Device::wgpu(DeviceKind::DefaultDevice).autodiff());
    }
}
