//! Backends, parsed once from their names into [`Backend`], and what each implies: its device,
//! how dense layers split their batch, how embedding gradients and Adam are laid out.

use burn::prelude::*;
use ember_models::{DenseSplit, Masks};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::TrainError;
use crate::adam::AdamLayout;

/// The GPU this process uses when set (a distributed run's local rank, see
/// [`use_gpu_index`]); burn's default device otherwise.
static GPU_INDEX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// Makes GPU backends use the discrete GPU `index` (one rank per GPU: the rank's index among
/// the ranks on its machine). Only the first call counts.
pub fn use_gpu_index(index: usize) {
    let _ = GPU_INDEX.set(index);
}

/// The GPU kind to open.
#[allow(dead_code)]
fn gpu_kind() -> DeviceKind {
    match GPU_INDEX.get() {
        Some(&index) => DeviceKind::DiscreteGpu(index),
        None => DeviceKind::DefaultDevice,
    }
}

/// A burn backend ember can train on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// burn-flex: pure-Rust CPU backend with SIMD and threads (the default).
    #[default]
    Flex,
    /// burn-ndarray: CPU.
    Ndarray,
    /// wgpu: GPUs through Vulkan, Metal or DX12.
    Wgpu,
    /// wgpu on Vulkan only.
    Vulkan,
}

impl Backend {
    /// Every backend, compiled in or not.
    pub const ALL: [Backend; 4] = [
        Backend::Flex,
        Backend::Ndarray,
        Backend::Wgpu,
        Backend::Vulkan,
    ];

    /// The name configs and `--device` use (also the cargo feature that compiles it in).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Ndarray => "ndarray",
            Backend::Wgpu => "wgpu",
            Backend::Vulkan => "vulkan",
        }
    }

    /// Whether the backend runs on a GPU.
    pub fn is_gpu(self) -> bool {
        matches!(self, Backend::Wgpu | Backend::Vulkan)
    }

    /// The backend's device, without autodiff; an error naming the cargo feature when the
    /// backend is not compiled into this binary.
    #[allow(deprecated, unreachable_code)]
    pub fn device(self) -> Result<Device, TrainError> {
        match self {
            #[cfg(feature = "flex")]
            Backend::Flex => return Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            Backend::Ndarray => return Ok(Device::ndarray()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => return Ok(Device::wgpu(gpu_kind())),
            #[cfg(feature = "vulkan")]
            Backend::Vulkan => return Ok(Device::vulkan(gpu_kind())),
            _ => {}
        }
        Err(TrainError::Device {
            name: self.name().to_string(),
            hint: format!(
                "rebuild with the cargo feature `{0}` (e.g. `cargo run --release --features {0} -- …`)",
                self.name()
            ),
        })
    }

    /// The backends compiled into this binary.
    pub fn available() -> Vec<Backend> {
        Self::ALL
            .into_iter()
            .filter(|b| b.device().is_ok())
            .collect()
    }

    /// How dense layers split a batch on this backend. Measured with `ember bench train`
    /// (NeuMF): on the CPU the chunked product runs on both cores and wins from small batches
    /// on; on an H100 it loses at 65,536 rows (14.9 M samples/s unsplit, 13.9 in 4 chunks, 12.6
    /// in 64) and wins at 1,048,576 (17.4 unsplit, 29.7 in 16 chunks, 30.0 in 64), hence chunks
    /// of at least 65,536 rows there.
    pub fn dense_split(self) -> DenseSplit {
        DenseSplit {
            groups: 64,
            min_rows: if self.is_gpu() { 65_536 } else { 256 },
        }
    }

    /// Where dropout masks are drawn: on the host on CPU backends (a fast generator; burn's
    /// draws element by element), on the device on GPU backends.
    pub fn masks(self) -> Masks {
        if self.is_gpu() {
            Masks::Device
        } else {
            Masks::Host
        }
    }

    /// How Adam lays out its update on this backend.
    pub fn adam_layout(self) -> AdamLayout {
        if self.is_gpu() {
            AdamLayout::Flat
        } else {
            AdamLayout::Host
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A backend name that is none of ember's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown backend `{0}`; choose one of `flex`, `ndarray`, `wgpu`, `vulkan`")]
pub struct UnknownBackend(pub String);

impl FromStr for Backend {
    type Err = UnknownBackend;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|b| b.name() == name)
            .ok_or_else(|| UnknownBackend(name.to_string()))
    }
}
