//! `ledger prune`: list (or with `--apply` delete) the images of never-promoted SHAs,
//! and record what was deleted.

use super::{denied, print_json};
use crate::args::{Global, PruneArgs};
use crate::context::{self, Reader, Writer};
use crate::exit::{Code, Result};
use ledger_pipeline::release::prune::{self, Candidate, Place, PrunePlan};
use ledger_pipeline::Registry;
use ledger_verify::evidence::Evidence;
use serde_json::json;

/// `ledger prune`.
pub async fn prune(global: &Global, args: PruneArgs) -> Result<Code> {
    let root = context::repo_root()?;
    let config = context::load_config(&root)?;
    // With --apply the key is loaded first: a missing key fails before any deletion.
    let writer = if args.apply {
        Some(Writer::load(global, &root, args.key.as_deref(), None).await?)
    } else {
        None
    };
    let reader;
    let (store, policy) = match &writer {
        Some(w) => (&w.store, &w.policy),
        None => {
            reader = Reader::open(global, root).await?;
            (&reader.store, &reader.policy)
        }
    };
    let engines = ledger_pipeline::Placement::connect_all(&config).await?;
    let registry = ledger_pipeline::registry_client();
    let min_age = args.min_age_days.unwrap_or(config.prune.min_age_days);
    let plan = prune::plan(
        &mut Evidence::new(store, policy),
        &engines,
        &registry,
        &config,
        min_age,
        time::OffsetDateTime::now_utc(),
    )
    .await?;
    if !args.json {
        print_prune_plan(&plan, args.apply);
    }
    let Some(writer) = writer else {
        if args.json {
            print_json(&plan)?;
        }
        return Ok(Code::Success);
    };
    apply(&writer, &args, &plan, &engines, &registry).await
}

/// Deletes the plan's candidates (within the threshold, with a key trusted for
/// deploy) and records what was deleted.
async fn apply(
    writer: &Writer,
    args: &PruneArgs,
    plan: &PrunePlan,
    engines: &ledger_pipeline::Placement,
    registry: &Registry,
) -> Result<Code> {
    prune::check_threshold(plan, args.force).map_err(denied)?;
    if plan.candidates.is_empty() {
        if args.json {
            print_json(&json!({ "plan": plan, "deleted": [], "record": null }))?;
        }
        return Ok(Code::Success);
    }
    // Pruning changes what can be deployed: the key must be trusted for deploy.
    ledger_pipeline::run::check_signer(&writer.recorder(), ledger_core::Stage::Deploy)?;
    let deleted = prune::apply(plan, engines, registry).await;
    let key = prune::record(
        &writer.recorder(),
        &writer.runner,
        plan,
        &deleted,
        args.force,
    )
    .await?;
    let failed = deleted.iter().filter(|d| !d.ok).count();
    if args.json {
        print_json(&json!({ "plan": plan, "deleted": deleted, "record": key }))?;
    } else {
        for d in &deleted {
            let c = &d.candidate;
            match &d.error {
                None => println!("deleted {} {}{}", place(c.place), c.reference, on(c)),
                Some(e) => println!("FAILED  {} {}{}: {e}", place(c.place), c.reference, on(c)),
            }
        }
        println!(
            "pruned {} of {} image copies; record {key} in {}",
            deleted.len() - failed,
            deleted.len(),
            writer.store.location()
        );
    }
    Ok(if failed == 0 {
        Code::Success
    } else {
        Code::Infrastructure
    })
}

/// ` on ENGINE` for an engine copy.
fn on(c: &Candidate) -> String {
    c.engine
        .as_deref()
        .map(|e| format!(" on {e}"))
        .unwrap_or_default()
}

fn place(p: Place) -> &'static str {
    match p {
        Place::Engine => "engine  ",
        Place::Registry => "registry",
    }
}

fn print_prune_plan(plan: &PrunePlan, apply: bool) {
    let shas: std::collections::BTreeSet<_> = plan.candidates.iter().map(|c| c.sha).collect();
    println!(
        "{} image copies of {} never-promoted SHA(s), {:.1} MB on the engines{}",
        plan.candidates.len(),
        shas.len(),
        plan.bytes() as f64 / 1e6,
        if apply {
            ""
        } else {
            " (dry run: nothing is deleted)"
        }
    );
    for c in &plan.candidates {
        let size = c
            .size
            .map(|s| format!(" {:.1} MB", s as f64 / 1e6))
            .unwrap_or_default();
        println!(
            "  {} {} {} {}{size}{}",
            c.sha.short(),
            c.image,
            place(c.place),
            c.reference,
            on(c)
        );
    }
    println!(
        "protected (promoted or running): {} digest(s)",
        plan.protected.len()
    );
    for p in &plan.protected {
        println!("  {} {}", p.digest, p.why);
    }
    if !plan.too_young.is_empty() {
        println!(
            "left alone: {} SHA(s) built less than {} day(s) ago or whose build failed",
            plan.too_young.len(),
            plan.min_age_days
        );
    }
    for i in &plan.ignored {
        println!("left alone (does not verify): {i}");
    }
    if plan.candidates.len() > plan.threshold {
        println!(
            "more than the safety threshold of {}: --apply also needs --force",
            plan.threshold
        );
    }
    if !apply && !plan.candidates.is_empty() {
        println!("run `ledger prune --apply` to delete them");
    }
}
