//! Backend selection at run time, among those compiled in.

use burn::prelude::*;

use crate::TrainError;

/// The backends this binary knows, with the cargo feature that compiles each in.
pub const BACKENDS: [(&str, &str); 4] = [
    ("flex", "flex"),
    ("ndarray", "ndarray"),
    ("wgpu", "wgpu"),
    ("vulkan", "vulkan"),
];

/// The device for a backend name (`flex`, `ndarray`, `wgpu`, `vulkan`), without autodiff.
#[allow(deprecated, unreachable_code)]
pub fn device(name: &str) -> Result<Device, TrainError> {
    match name {
        #[cfg(feature = "flex")]
        "flex" => return Ok(Device::flex()),
        #[cfg(feature = "ndarray")]
        "ndarray" => return Ok(Device::ndarray()),
        #[cfg(feature = "wgpu")]
        "wgpu" => return Ok(Device::wgpu(DeviceKind::DefaultDevice)),
        #[cfg(feature = "vulkan")]
        "vulkan" => return Ok(Device::vulkan(DeviceKind::DefaultDevice)),
        _ => {}
    }
    let hint = match BACKENDS.iter().find(|(n, _)| *n == name) {
        Some((_, feature)) => format!(
            "rebuild with the cargo feature `{feature}` (e.g. `cargo run --release --features {feature} -- …`)"
        ),
        None => format!(
            "unknown backend; choose one of {}",
            BACKENDS
                .iter()
                .map(|(n, _)| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Err(TrainError::Device {
        name: name.to_string(),
        hint,
    })
}

/// The backends compiled into this binary.
pub fn available() -> Vec<&'static str> {
    BACKENDS
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| device(n).is_ok())
        .collect()
}

/// Whether `name` is a GPU backend.
pub fn is_gpu(name: &str) -> bool {
    matches!(name, "wgpu" | "vulkan")
}

/// How dense layers split a batch on the backend `name`: (most chunks, fewest rows per chunk),
/// for `ember_models::layers::set_split_k`. Measured with `ember bench train` (NeuMF): on the CPU
/// the chunked product runs on both cores and wins from small batches on; on an H100 it loses at
/// 65,536 rows (14.9 M samples/s unsplit, 13.9 in 4 chunks, 12.6 in 64) and wins at 1,048,576
/// (17.4 unsplit, 29.7 in 16 chunks, 30.0 in 64), hence chunks of at least 65,536 rows there.
pub fn default_split_k(name: &str) -> (usize, usize) {
    if is_gpu(name) {
        (64, 65_536)
    } else {
        (64, 256)
    }
}
