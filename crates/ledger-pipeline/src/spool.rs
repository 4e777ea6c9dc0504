//! The local spool: where a wrapped command's result waits when the store is down.
//!
//! Why: a command that ran (tests that took an hour, a migration) must never have its
//! result lost because the store failed after it finished. Its captured log and its
//! predicate are kept in `.ledger/spool/` (git-ignored with the rest of `.ledger/`,
//! and masked from wrapped commands by isolation), one folder per run, until
//! `ledger stage … --resume` or the next run of that stage for that SHA records it.
//!
//! The evidence envelope can only be signed once the attempt number is known (it is
//! in the signed predicate and in the key), that is when the run is recorded. But the
//! spooled record is *sealed* when it is kept: `run.sig.json` is a DSSE signature, by
//! the stage's signing key, over the exact bytes of `run.json` (payload type
//! [`SPOOL_PAYLOAD_TYPE`], so it can never pass for evidence). A run is recorded only
//! if the key recording it sealed it, so anything that can write `.ledger/` but does
//! not hold the key (a CI step running a pull request's code before `ledger`) cannot
//! plant a passing run for the next stage to sign. Recording also checks that the log
//! still hashes to what the record says, and that it is the stage and SHA asked for.

use crate::error::Error;
use ledger_core::predicate::CommandPredicate;
use ledger_core::signed::SignedDocument;
use ledger_core::{GitSha, PublicKey, Sha256Digest, SigningKey, Stage};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const RECORD: &str = "run.json";
/// The seal: a DSSE signature over `run.json`'s bytes by the key that kept it.
const SEAL: &str = "run.sig.json";
/// The seal's payload type: a spooled run, never evidence.
pub const SPOOL_PAYLOAD_TYPE: &str = "application/vnd.ledger.spooled-run+json";
const LOG: &str = "output.log";
/// A folder being recorded by a process: `<name>.recording-<pid>`.
const CLAIMED: &str = ".recording-";

/// What is kept of one run: everything of its predicate but the attempt it gets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpooledRun {
    pub stage: Stage,
    pub sha: GitSha,
    /// The predicate as it would have been written; its attempt and log key are set
    /// when it is recorded.
    pub predicate: CommandPredicate,
}

/// The spool folder (normally `<repository>/.ledger/spool`).
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

/// One spooled run, claimed by this process while it is recorded.
#[derive(Debug)]
pub struct Claimed {
    path: PathBuf,
    unclaimed: PathBuf,
    pub run: SpooledRun,
    pub log: Vec<u8>,
}

impl Claimed {
    /// Where it is kept, for messages.
    pub fn path(&self) -> String {
        self.unclaimed.display().to_string()
    }

    /// Recorded: the folder is removed.
    pub fn done(self) -> std::io::Result<()> {
        std::fs::remove_dir_all(&self.path)
    }

    /// Not recorded: left for the next try.
    pub fn release(self) {
        let _ = std::fs::rename(&self.path, &self.unclaimed);
    }
}

impl Spool {
    pub fn new(dir: PathBuf) -> Spool {
        Spool { dir }
    }

    /// Keeps `run` and its log; returns the folder it is kept in. Written under a
    /// temporary name and renamed, so a folder with a record is always complete.
    pub fn keep(&self, run: &SpooledRun, log: &[u8], key: &SigningKey) -> std::io::Result<PathBuf> {
        let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        let name = format!(
            "{}-{}-{nanos:020}-{}",
            run.stage,
            run.sha,
            std::process::id()
        );
        let partial = self.dir.join(format!(".{name}.partial"));
        let done = self.dir.join(&name);
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&partial)?;
        let record = serde_json::to_vec_pretty(run).map_err(std::io::Error::other)?;
        write_private(&partial.join(LOG), log)?;
        write_private(&partial.join(RECORD), &record)?;
        let mut seal = SignedDocument::new(SPOOL_PAYLOAD_TYPE, &record);
        seal.sign(key);
        write_private(&partial.join(SEAL), &seal.to_bytes())?;
        std::fs::rename(&partial, &done)?;
        Ok(done)
    }

    /// The runs of `stage` for `sha` waiting here, oldest first (a folder another
    /// live process is recording is skipped).
    pub fn pending(&self, stage: Stage, sha: &GitSha) -> Vec<PathBuf> {
        let prefix = format!("{stage}-{sha}-");
        let mut found: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
                name.is_some_and(|n| n.starts_with(&prefix) && !claimed_by_live_process(&n))
            })
            .collect();
        found.sort();
        found
    }

    /// Claims one pending folder for this process and reads it. `Ok(None)` when
    /// another process claimed it first.
    pub fn claim(&self, path: &Path, key: &PublicKey) -> Result<Option<Claimed>, Error> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let Some(name) = name else {
            return Ok(None);
        };
        let unclaimed = self.dir.join(name.split(CLAIMED).next().unwrap_or(&name));
        let mut claimed = unclaimed.clone().into_os_string();
        claimed.push(format!("{CLAIMED}{}", std::process::id()));
        let claimed = PathBuf::from(claimed);
        if std::fs::rename(path, &claimed).is_err() {
            return Ok(None);
        }
        let read = |file: &str| std::fs::read(claimed.join(file));
        let shown = unclaimed.display().to_string();
        let damaged = |why: String| Error::SpoolDamaged { path: shown, why };
        let parsed = read(RECORD)
            .map_err(|e| format!("cannot read its {RECORD}: {e}"))
            .and_then(|b| {
                let seal = read(SEAL).map_err(|e| format!("cannot read its {SEAL}: {e}"))?;
                sealed_by(&b, &seal, key)?;
                Ok(b)
            })
            .and_then(|b| {
                serde_json::from_slice::<SpooledRun>(&b)
                    .map_err(|e| format!("{RECORD} is not a spooled run: {e}"))
            })
            .and_then(|run| {
                let log = read(LOG).map_err(|e| format!("cannot read its {LOG}: {e}"))?;
                Ok((run, log))
            });
        let (run, log) = match parsed {
            Ok(v) => v,
            Err(why) => {
                let _ = std::fs::rename(&claimed, &unclaimed);
                return Err(damaged(why));
            }
        };
        let claim = Claimed {
            path: claimed,
            unclaimed,
            run,
            log,
        };
        if Sha256Digest::of(&claim.log) != claim.run.predicate.output.sha256 {
            let path = claim.path();
            claim.release();
            return Err(Error::SpoolDamaged {
                path,
                why: format!("its {LOG} does not hash to the sha256 its record names"),
            });
        }
        Ok(Some(claim))
    }
}

/// Checks that `seal` is `key`'s signature over exactly `record`.
fn sealed_by(record: &[u8], seal: &[u8], key: &PublicKey) -> Result<(), String> {
    let not_ours = |why: String| {
        format!(
            "its {SEAL} {why}: a spooled run is recorded only with the signing key that kept it \
             ({}); record it with that key, or remove it if nobody here spooled it",
            key.key_id().short()
        )
    };
    let seal = SignedDocument::parse(seal, SPOOL_PAYLOAD_TYPE)
        .map_err(|e| not_ours(format!("is not a seal ({e})")))?;
    if seal.payload() != record {
        return Err(not_ours(format!("does not cover this {RECORD}")));
    }
    match seal.signers(std::slice::from_ref(key)) {
        Ok(signers) if !signers.is_empty() => Ok(()),
        Ok(_) => Err(not_ours("is not signed by this key".into())),
        Err(e) => Err(not_ours(format!("does not verify ({e})"))),
    }
}

/// Whether a folder name is claimed by a process that still runs (one claimed by a
/// process that died, a crash while recording, is pending again).
fn claimed_by_live_process(name: &str) -> bool {
    let Some((_, pid)) = name.split_once(CLAIMED) else {
        return false;
    };
    Path::new("/proc").join(pid).exists()
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
