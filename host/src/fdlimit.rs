//! The process's open-file limit: raised to its hard limit at start, and shared out
//! between the things that hold descriptors (client connections, plugin requests), so
//! that no one of them can exhaust it for the others.

/// The soft and hard `RLIMIT_NOFILE` (open files) of this process.
pub fn nofile() -> std::io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((lim.rlim_cur as u64, lim.rlim_max as u64))
}

/// Raise the soft open-file limit to the hard limit; returns (before, after).
pub fn raise_nofile() -> std::io::Result<(u64, u64)> {
    let (soft, hard) = nofile()?;
    if soft >= hard {
        return Ok((soft, soft));
    }
    let lim = libc::rlimit {
        rlim_cur: hard as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((soft, hard))
}

/// The share of `open_files` one kind of holder may take: a quarter, at least 16.
/// Client connections and plugin requests each get one, leaving half for the store,
/// webhook deliveries, mail and the rest.
pub fn share(open_files: u64) -> usize {
    (open_files / 4).clamp(16, usize::MAX as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_limit() {
        let (_, after) = raise_nofile().unwrap();
        let (soft, hard) = nofile().unwrap();
        assert_eq!((soft, after), (hard, hard));
    }

    #[test]
    fn shares_leave_half_for_the_rest() {
        assert_eq!(share(20_000), 5_000);
        assert_eq!(share(1024), 256);
        assert_eq!(share(10), 16);
    }
}
