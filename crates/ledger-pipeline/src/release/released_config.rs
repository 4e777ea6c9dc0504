//! The `ledger.toml` a replay or rollback runs a release under: the one in the SHA's
//! own git tree, never today's file.
//!
//! A release runs again as it was released. Today's file may already describe a newer
//! release (a smoke check that expects its version, a new variable, a moved port);
//! running an older release under it fails for reasons that have nothing to do with
//! that release, or passes checks it was never meant to meet. So the environment's
//! entry (`[[environments]]`: its services with their ports, variables, secrets'
//! names and health timeouts, its required variables, its smoke checks) is read from
//! `ledger.toml` at the SHA, from git objects only, as `build` reads its context. The
//! project's identity stays today's (`repository` labels the containers the replay
//! replaces, `registry` is where images are pulled from): the replayed release must
//! replace what runs now.
//!
//! The tree, rather than a copy recorded in the deployment evidence, because it is
//! there for every release (those deployed before this rule existed, and a new
//! environment or host the release never ran in), it is immutable under the SHA, and
//! it is where the configuration is reviewed with the code. A release whose tree has
//! no usable `ledger.toml`, or does not configure the environment, is refused (exit
//! 2); `--current-config` runs it under today's file instead, on request and said so.

use crate::config::{Config, CONFIG_FILE};
use crate::error::Error;
use crate::source::Worktree;
use ledger_core::GitSha;

/// Today's configuration with `environment`'s entry replaced by the one in
/// `ledger.toml` of `sha`'s own tree.
pub fn released(today: &Config, sha: &GitSha, environment: &str) -> Result<Config, Error> {
    let refuse = |why: String| Error::NoReleasedConfig {
        sha: *sha,
        environment: environment.to_owned(),
        why,
    };
    let tree = Worktree::find(&today.root, None)?;
    let bytes = tree
        .file_at(sha, CONFIG_FILE, ledger_core::MAX_JSON_BYTES)?
        .ok_or_else(|| refuse(format!("its tree has no {CONFIG_FILE}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|_not_utf8| refuse(format!("its {CONFIG_FILE} is not UTF-8")))?;
    let shown = format!("{CONFIG_FILE} of {sha}");
    let theirs = Config::parse(&text, &today.root, &shown).map_err(|e| refuse(e.to_string()))?;
    let env = theirs
        .environment(environment)
        .map_err(|_not_configured| {
            refuse(format!(
                "its {CONFIG_FILE} configures no environment `{environment}`"
            ))
        })?
        .clone();
    let mut config = today.clone();
    match config
        .environments
        .iter_mut()
        .find(|e| e.name == environment)
    {
        Some(current) => *current = env,
        None => config.environments.push(env),
    }
    Ok(config)
}
