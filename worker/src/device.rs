//! The compute device a worker trains on, chosen on the command line.

use burn::tensor::Device;
use clap::ValueEnum;

use crate::error::Result;

/// Compute device for training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceChoice {
    /// Flex CPU backend, multi-threaded.
    Cpu,
    /// GPU through wgpu; needs the `wgpu` cargo feature.
    Wgpu,
}

/// Creates the compute device for `choice`.
///
/// # Errors
///
/// [`crate::WorkerError::InvalidConfig`] for `wgpu` in a build without the `wgpu` feature.
pub fn make_device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        DeviceChoice::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        #[cfg(not(feature = "wgpu"))]
        DeviceChoice::Wgpu => Err(crate::error::WorkerError::InvalidConfig("this build has no wgpu support; rebuild with `--features wgpu`".to_owned())),
    }
}

impl DeviceChoice {
    /// Backend name that a worker agent registers with: `cpu` or `wgpu`.
    pub fn backend_name(self) -> &'static str {
        match self {
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Wgpu => "wgpu",
        }
    }
}
