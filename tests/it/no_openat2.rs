//! Where the kernel refuses `openat2` (Linux before 5.6, or a container's seccomp
//! profile answering `ENOSYS` or `EPERM`), `ledger` reads, writes and lists its local
//! store by checked paths instead (docs/storage.md): the same stages pass, the same
//! links are refused. The refusal here is a real seccomp filter, installed in the
//! `ledger` process before it starts, that fails `openat2` and allows everything else.

use crate::{assert_code, text, Repo, SHA};
use std::os::unix::fs::symlink;
use std::process::{Command, Output};

/// What `ledger_store` logs when it finds `openat2` refused.
const FELL_BACK: &str = "reads check each folder first";

/// `cmd` run under a seccomp filter that fails `openat2` with `errno`, with the
/// store's debug log on stderr.
#[allow(
    unsafe_code,
    reason = "installing a seccomp filter in the child before exec has no safe API"
)]
fn without_openat2(mut cmd: Command, errno: i32) -> Output {
    use libc::{sock_filter, sock_fprog, BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
    use std::os::unix::process::CommandExt;
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const OPENAT2: u32 = 437;
    let op = |code: u32, k: u32, jt: u8, jf: u8| sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let errno = libc::SECCOMP_RET_ERRNO | u32::try_from(errno).unwrap();
    // Another architecture's calls pass; on x86-64, number 437 fails with `errno`.
    let filter = [
        op(BPF_LD | BPF_W | BPF_ABS, 4, 0, 0),
        op(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        op(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW, 0, 0),
        op(BPF_LD | BPF_W | BPF_ABS, 0, 0, 0),
        op(BPF_JMP | BPF_JEQ | BPF_K, OPENAT2, 0, 1),
        op(BPF_RET | BPF_K, errno, 0, 0),
        op(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW, 0, 0),
    ];
    // SAFETY: the closure runs in the forked child before exec; it allocates nothing
    // and makes two `prctl` calls, which are async-signal-safe, on a program that
    // lives in the closure (copied into the child) for the duration of the call.
    unsafe {
        cmd.pre_exec(move || {
            let program = sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr().cast_mut(),
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &program as *const sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.env("RUST_LOG", "ledger_store=debug")
        .output()
        .expect("run ledger under the filter")
}

/// A stage, its successor's gate and `verify` pass on a store read and written by
/// checked paths, the store's log says so (and does not without the filter), and a
/// SHA's folder moved out and linked back in is still refused, naming the link.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_kernel_refusing_openat2_has_the_store_reached_by_checked_paths() {
    for errno in [libc::ENOSYS, libc::EPERM] {
        let repo = Repo::new();
        let run = |args: &[&str]| without_openat2(repo.command(args), errno);
        let out = run(&["stage", "commit", "--sha", SHA, "--", "true"]);
        assert_code(&out, 0);
        assert!(text(&out).contains(FELL_BACK), "{errno}: {}", text(&out));
        assert_code(&run(&["gate", "integration", "--sha", SHA]), 0);
        assert_code(&run(&["verify", SHA]), 0);
        let mut plain = repo.command(&["verify", SHA]);
        let plain = plain
            .env("RUST_LOG", "ledger_store=debug")
            .output()
            .unwrap();
        assert_code(&plain, 0);
        assert!(!text(&plain).contains(FELL_BACK), "{}", text(&plain));

        let outside = tempfile::tempdir().unwrap();
        let folder = format!("commit/{SHA}");
        let moved = outside.path().join("moved");
        std::fs::rename(repo.store().join(&folder), &moved).unwrap();
        symlink(&moved, repo.store().join(&folder)).unwrap();
        let out = run(&["verify", SHA]);
        assert_code(&out, 4);
        let named = format!("{folder} in the store is a symbolic link");
        assert!(text(&out).contains(&named), "{errno}: {}", text(&out));
        // What the commands say is what they say with `openat2`.
        for args in [
            &["verify", SHA][..],
            &["gate", "integration", "--sha", SHA],
            &["stage", "integration", "--sha", SHA, "--", "true"],
        ] {
            let filtered = run(args);
            let plain = repo.command(args).output().unwrap();
            assert_eq!(filtered.status.code(), plain.status.code(), "{args:?}");
            assert_eq!(said(&filtered), said(&plain), "{args:?}");
        }
    }
}

/// What a command printed, its debug log left out.
fn said(out: &Output) -> String {
    text(out)
        .lines()
        .filter(|l| !l.contains(" DEBUG "))
        .collect::<Vec<_>>()
        .join("\n")
}
