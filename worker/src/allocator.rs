//! Process-wide settings of the C allocator for the training loop.

/// Largest block glibc serves from its heap instead of a fresh `mmap`, in bytes.
/// glibc rejects values above 32 MiB on 64-bit targets.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;
/// Free memory at the top of glibc's heap that stays mapped, in bytes.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 256 << 20;

/// Makes glibc's malloc keep freed memory for reuse instead of returning it to
/// the OS. A training step allocates and frees tensors of about 0.1 to 1 MiB.
/// With glibc's defaults many of them come from `mmap` or a heap that was just
/// trimmed, so every step page-faults and zeroes fresh pages again. The cost is
/// up to `TRIM_THRESHOLD` of freed memory kept in the process. Does nothing on
/// other platforms. Call it once at start-up, before the first training step.
pub fn retain_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes allocator parameters and is safe to call at
    // any time. It returns 0 for a rejected value, which leaves the default.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}
