//! `ledger report SHA`: a release's evidence and the store's delivery metrics,
//! rendered as Markdown, HTML or a status update (see `crate::render`).

use super::create_new;
use crate::args::{Global, ReportArgs, ReportFormat};
use crate::context::{self, Reader};
use crate::exit::{Code, Failure, Result};
use crate::render;

/// `ledger report`.
pub async fn report(global: &Global, args: ReportArgs) -> Result<Code> {
    let root = context::repo_root()?;
    let sha = super::resolve_commit(args.sha.as_deref(), &root)?;
    let reader = Reader::open(global, root).await?;
    let report = ledger_pipeline::observe::metrics::report(&mut reader.evidence(), &sha).await?;
    let text = match args.format {
        ReportFormat::Markdown => render::markdown::markdown(&report),
        ReportFormat::Html => render::html::html(&report),
        ReportFormat::Status => render::status::status_update(&report, reader.store.location()),
    };
    match &args.out {
        None => print!("{text}"),
        Some(path) => {
            if args.force && path.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
                std::fs::remove_file(path).map_err(|e| {
                    Failure::input(format!("cannot replace {}: {e}", path.display()))
                })?;
            }
            create_new(path, text.as_bytes(), false)?;
            say!("ledger: wrote {}", path.display());
        }
    }
    Ok(if report.chain.ok {
        Code::Success
    } else {
        Code::VerificationFailed
    })
}
