//! Child processes that must not outlive the process that started them.

/// Asks the kernel to kill the child when its parent dies, however the parent dies, so that a
/// killed runner or test never leaves functions or emulators behind.
#[allow(unsafe_code)] // prctl in pre_exec: async-signal-safe, no allocation.
pub fn die_with_parent(command: &mut tokio::process::Command) {
    #[cfg(target_os = "linux")]
    // SAFETY: only calls prctl(2), which is async-signal-safe, between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
