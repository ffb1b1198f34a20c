//! `layers::dense` (a linear layer over chunks of the batch) equals burn's `Linear::forward` in
//! values and in every gradient.

use burn::nn::LinearConfig;
use burn::prelude::*;
use ember_models::DenseSplit;
use ember_models::layers::dense;

#[cfg(feature = "wgpu")]
mod common;

#[test]
fn split_dense_layer_matches_linear_forward_and_gradients() {
    check_dense(Device::flex().autodiff());
}

/// Matmuls on lavapipe pass but take minutes (measured: 235 s with `CUBECL_AUTOTUNE_LEVEL=minimal`,
/// 685 s without, nearly all of it compiling autotune's candidate kernels), so this test asks for
/// `EMBER_TEST_WGPU_MATMUL` as well; on a real GPU it takes seconds.
#[cfg(feature = "wgpu")]
#[test]
fn split_dense_layer_matches_linear_forward_and_gradients_on_wgpu() {
    // Opt-in even in CI (minutes on lavapipe); the Vulkan device itself is a required input.
    if std::env::var_os("EMBER_TEST_WGPU_MATMUL").is_none() {
        eprintln!("skipped: set EMBER_TEST_WGPU_MATMUL=1 to run matmuls on a Vulkan device");
        return;
    }
    if !common::vulkan_available() {
        return;
    }
    check_dense(Device::wgpu(DeviceKind::DefaultDevice).autodiff());
}

fn check_dense(device: Device) {
    // At most 4 chunks of at least 256 rows.
    let split = DenseSplit {
        groups: 4,
        min_rows: 256,
    };
    device.seed(11);
    let (rows, input, output) = (1024, 12, 5); // 1024 rows: split into 4 chunks of 256
    let linear = LinearConfig::new(input, output).init(&device);
    let x_data: Vec<f32> = (0..rows * input)
        .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
        .collect();
    let run = |chunked: bool| {
        let x = Tensor::<2>::from_data(TensorData::new(x_data.clone(), [rows, input]), &device)
            .require_grad();
        let y = if chunked {
            dense(&linear, x.clone(), split)
        } else {
            linear.forward(x.clone())
        };
        let values = y.clone().into_data().try_to_vec::<f32>().unwrap();
        let grads = (y.clone() * y).sum().backward();
        let flat = |t: Option<Tensor<2>>| t.unwrap().into_data().try_to_vec::<f32>().unwrap();
        let bias = linear.bias.as_ref().unwrap().val().grad(&grads).unwrap();
        (
            values,
            flat(x.grad(&grads)),
            flat(linear.weight.val().grad(&grads)),
            bias.into_data().try_to_vec::<f32>().unwrap(),
        )
    };
    let (plain, split) = (run(false), run(true));
    let close = |a: &[f32], b: &[f32], what: &str| {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + x.abs()),
                "{what}: {x} vs {y}"
            );
        }
    };
    close(&plain.0, &split.0, "output");
    close(&plain.1, &split.1, "input gradient");
    close(&plain.2, &split.2, "weight gradient");
    close(&plain.3, &split.3, "bias gradient");
}
