//! `ledger report`: the Markdown step summary (pinned), and the HTML page rendered in
//! headless Chromium (Debian's `chromium`): the rendered DOM has the timeline, the
//! smoke checks and the metrics, nothing from the evidence runs as markup, the
//! screenshot is a real picture, and the laid-out page is measured ([`layout`]): no
//! row of the evidence table grows taller than a few lines, the banner says where the
//! release stands in the status update's words. The real-engine releases (a promoted
//! one with registry digests, a rejected one) are rendered in `docker.rs`.

use crate::{assert_code, text, Repo, SHA};
use ledger_core::{ArtifactKind, Stage};

/// A full chain for SHA, from the schema fixtures, with a hostile command line.
fn released() -> Repo {
    let repo = Repo::new();
    repo.record(ArtifactKind::Commit, SHA, |p| {
        p["command"]["argv"] =
            serde_json::json!(["sh", "-c", "<script>document.title='pwned'</script>"]);
    });
    for s in Stage::ALL
        .into_iter()
        .skip(1)
        .take_while(|s| *s != Stage::Decide)
    {
        repo.record(s.primary_artifact(), SHA, |_| {});
    }
    repo.record(ArtifactKind::Decision, SHA, |_| {});
    repo.record(ArtifactKind::Timing, SHA, |_| {});
    repo
}

#[test]
fn markdown_report_is_pinned() {
    let repo = released();
    let out = repo.ledger(&["report", SHA, "--format", "markdown"]);
    assert_code(&out, 0);
    let mut md = String::from_utf8_lossy(&out.stdout).into_owned();
    for public in [".ledger/test.pub", ".ledger/release.pub"] {
        let keyid = repo.key_id(public);
        md = md.replace(&keyid[..12], "[KEYID]");
    }
    let md = crate::read::stable(&md);
    insta::assert_snapshot!("report_markdown", md);
}

#[test]
fn report_refuses_to_overwrite_and_fails_on_tampered_evidence() {
    let repo = released();
    std::fs::write(repo.path().join("r.md"), "keep").unwrap();
    let out = repo.ledger(&["report", SHA, "--out", "r.md"]);
    assert_code(&out, 2);
    assert_eq!(
        std::fs::read_to_string(repo.path().join("r.md")).unwrap(),
        "keep"
    );
    // --force replaces it.
    let out = repo.ledger(&["report", SHA, "--out", "r.md", "--force"]);
    assert_code(&out, 0);
    let replaced = std::fs::read_to_string(repo.path().join("r.md")).unwrap();
    assert!(replaced.contains("Status: done"), "{replaced}");
    let key = format!("release/{SHA}/decision.json");
    let mut bytes = repo.read_object(&key);
    bytes[40] ^= 1;
    repo.tamper_object(&key, bytes);
    let out = repo.ledger(&["report", SHA]);
    assert_code(&out, 4);
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.contains("evidence FAILED verification"), "{md}");
    assert!(md.contains("**unverified**"), "{md}");
}

pub fn chromium() -> Option<String> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if found.is_none() && std::env::var("LEDGER_REQUIRE_CHROMIUM").as_deref() == Ok("1") {
        panic!("LEDGER_REQUIRE_CHROMIUM=1 but no chromium on PATH");
    }
    found.map(str::to_owned)
}

pub fn headless(browser: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--window-size=1200,1400",
        ])
        .args(args)
        .output()
        .expect("run chromium")
}

#[test]
fn html_report_renders_in_headless_chromium() {
    let Some(browser) = chromium() else { return };
    let repo = released();
    let out = repo.ledger(&["report", SHA, "--format", "html", "--out", "report.html"]);
    assert_code(&out, 0);
    let page = repo.path().join("report.html");
    let url = format!("file://{}", page.display());

    let dom = headless(&browser, &["--dump-dom", &url]);
    assert!(dom.status.success(), "{}", text(&dom));
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    assert!(
        dom.contains(r#"id="verdict">Status: done (release promoted)</p>"#),
        "{dom}"
    );
    // One timeline row per artifact: seven stages and the timing record.
    assert_eq!(
        dom.matches(r#"<div class="row" data-stage="#).count(),
        8,
        "{dom}"
    );
    // The fixture's two smoke checks, with their latencies.
    assert!(
        dom.contains(r#"<tr data-check="health">"#) && dom.contains(r#"<tr data-check="orders">"#),
        "{dom}"
    );
    assert!(dom.contains(r#"id="m-deploys">1 (0 failed)</td>"#), "{dom}");
    assert!(
        dom.contains(r#"id="m-cfr">0 % (0 of 1 releases rejected)</td>"#),
        "{dom}"
    );
    // The hostile argv is text, never markup: no script element, title unchanged.
    assert!(!dom.contains("<script>"), "{dom}");
    assert!(dom.contains("&lt;script&gt;"), "{dom}");
    assert!(
        dom.contains(&format!("<title>ledger report {SHA}</title>")),
        "{dom}"
    );
    // Self-contained: nothing that would load from elsewhere.
    for remote in ["src=", "href=", "@import", "url("] {
        assert!(!dom.contains(remote), "{remote} in {dom}");
    }

    let shot = repo.path().join("report.png");
    let out = headless(
        &browser,
        &[&format!("--screenshot={}", shot.display()), &url],
    );
    assert!(out.status.success(), "{}", text(&out));
    let png = std::fs::read(&shot).expect("a screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        png.len() > 20_000,
        "a {}-byte screenshot is too small to hold the page",
        png.len()
    );
}

#[test]
fn delivery_metrics_count_releases_and_keep_replays_and_rollbacks_apart() {
    let repo = Repo::new();
    let (a, b, c) = ("a".repeat(40), "b".repeat(40), "c".repeat(40));
    let manifest = serde_json::json!({
        "key": format!("release-candidate/{a}/manifest.json"), "sha256": "0".repeat(64)
    });
    repo.record(ArtifactKind::Deployment, &a, |p| {
        p["duration_ms"] = 1000.into()
    });
    repo.record(ArtifactKind::Decision, &a, |_| {});
    repo.record(ArtifactKind::Timing, &a, |p| {
        p["lead_time_ms"] = 60_000.into()
    });
    // A replay of a: a decision of its own, not a release, no lead time counted.
    repo.record(ArtifactKind::Decision, &a, |p| {
        p["replay"] = true.into();
        p["manifest"] = manifest.clone();
    });
    repo.record(ArtifactKind::Timing, &a, |p| {
        p["lead_time_ms"] = 9_000_000.into()
    });
    repo.record(ArtifactKind::Deployment, &b, |p| {
        p["duration_ms"] = 700_000.into();
        p["result"] = "fail".into();
    });
    repo.record(ArtifactKind::Decision, &b, |p| {
        p["decision"] = "reject".into();
        p["result"] = "fail".into();
        p["reasons"] =
            serde_json::json!([{"rule": "/release/requires/0", "message": "deploy failed"}]);
    });
    repo.record(ArtifactKind::Timing, &b, |p| {
        p["lead_time_ms"] = 120_000.into()
    });
    // A rollback to c, while b was running.
    repo.record(ArtifactKind::Decision, &c, |p| {
        p["replay"] = true.into();
        p["rollback_from"] = b.clone().into();
        p["manifest"] = manifest.clone();
    });
    let out = repo.ledger(&["report", &a]);
    assert_code(&out, 0);
    let md = String::from_utf8_lossy(&out.stdout);
    for line in [
        "| deploys | 2 (1 failed) |",
        "| deploy duration p50 / p95 | 1.0 s / 11 min 40 s (over the 10 min target) |",
        "| lead time p50 / p95 | 1 min 0 s / 2 min 0 s (2 releases) |",
        "| change-failure rate | 50 % (1 of 2 releases rejected) |",
        "| replays / rollbacks | 1 / 1 |",
    ] {
        assert!(md.contains(line), "{line} missing from\n{md}");
    }
}

fn status_update(repo: &Repo) -> String {
    let out = repo.ledger(&["report", SHA, "--format", "status"]);
    assert_code(&out, 0);
    String::from_utf8_lossy(&out.stdout).replace(&repo.store().display().to_string(), "[STORE]")
}

#[test]
fn status_update_of_a_passing_release_is_pinned() {
    let repo = released();
    insta::assert_snapshot!("status_update_done", status_update(&repo));
}

#[test]
fn status_update_of_a_failing_release_escalates() {
    let repo = Repo::new();
    for s in [
        Stage::Commit,
        Stage::Integration,
        Stage::Build,
        Stage::Publish,
    ] {
        repo.record(s.primary_artifact(), SHA, |_| {});
    }
    // Health failed in production and the previous release could not be restored.
    repo.record(ArtifactKind::Deployment, SHA, |p| {
        p["result"] = "fail".into();
        p["failure"] = serde_json::json!({"message": "container api did not become healthy", "restored": false});
    });
    repo.record(ArtifactKind::Smoke, SHA, |p| {
        p["result"] = "fail".into();
        p["checks"][1]["ok"] = false.into();
        p["checks"][1]["status"] = 503.into();
    });
    let text = status_update(&repo);
    assert!(text.starts_with("Status: blocked"), "{text}");
    assert!(
        text.contains("health checks failed in production and rollback was not successful"),
        "{text}"
    );
    insta::assert_snapshot!("status_update_blocked", text);
}

/// What Chromium laid out for a report page.
#[derive(Debug, serde::Deserialize)]
pub struct Layout {
    pub banner: String,
    pub banner_class: String,
    /// Heights (px) of the evidence table's rows, the header row first.
    pub rows: Vec<f64>,
    /// Widths (px) of the evidence table's columns.
    pub columns: Vec<f64>,
    /// The timeline's stage labels, top to bottom.
    pub timeline: Vec<String>,
    /// The result cells' text and colour.
    pub results: Vec<(String, String)>,
}

/// Renders `sha`'s HTML report in headless Chromium and measures it: a copy of the
/// page gets a script that writes the measurements into the DOM (the report itself
/// has no script), and `--dump-dom` reads them back.
pub fn layout(browser: &str, repo: &Repo, sha: &str, code: i32) -> Layout {
    let out = repo.ledger(&["report", sha, "--format", "html"]);
    assert_code(&out, code);
    let page = String::from_utf8(out.stdout).unwrap();
    let probe = r#"<script>
const q = s => [...document.querySelectorAll(s)];
const m = {
  banner: document.getElementById('verdict').textContent,
  banner_class: document.getElementById('verdict').className,
  rows: q('#evidence tr').map(r => r.getBoundingClientRect().height),
  columns: q('#evidence tr:first-child th').map(c => c.getBoundingClientRect().width),
  timeline: q('#timeline .row').map(r => r.dataset.stage),
  results: q('#evidence td:nth-child(3)').map(c => [c.textContent, getComputedStyle(c).color]),
};
const pre = document.createElement('pre');
pre.id = 'measure';
pre.textContent = JSON.stringify(m);
document.body.appendChild(pre);
</script></body>"#;
    assert!(
        !page.contains("<script"),
        "the report must not carry a script"
    );
    let measured = repo.path().join(format!("measure-{}.html", &sha[..8]));
    std::fs::write(&measured, page.replace("</body>", probe)).unwrap();
    let url = format!("file://{}", measured.display());
    let dom = headless(browser, &["--dump-dom", "--virtual-time-budget=2000", &url]);
    assert!(dom.status.success(), "{}", text(&dom));
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    let start = dom.find(r#"<pre id="measure">"#).expect("measurements") + 18;
    let end = start + dom[start..].find("</pre>").unwrap();
    let json = dom[start..end]
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">");
    serde_json::from_str(&json).expect("measurements are JSON")
}

impl Layout {
    /// Every row is at most `lines` text lines tall (the header row is one line), and
    /// no column is squeezed below 40 px: what a long unbroken digest used to do.
    pub fn assert_readable(&self, lines: f64) {
        let line = self.rows[0];
        for (i, h) in self.rows.iter().enumerate() {
            assert!(
                *h <= line * lines,
                "row {i} is {h} px tall, over {lines} lines of {line} px: {self:?}"
            );
        }
        assert!(
            self.columns.iter().all(|w| *w >= 40.0),
            "a squeezed column: {self:?}"
        );
    }

    /// Each `fail` / `unverified` result is red, each `pass` green.
    pub fn assert_results_coloured(&self) {
        for (word, colour) in &self.results {
            let want = match word.as_str() {
                "pass" => "rgb(26, 127, 55)",
                "fail" | "unverified" => "rgb(207, 34, 46)",
                _ => continue,
            };
            assert_eq!(colour, want, "{word} coloured {colour}: {self:?}");
        }
    }
}

#[test]
fn html_banner_and_layout_say_where_a_release_stands() {
    let Some(browser) = chromium() else { return };
    // Promoted.
    let repo = released();
    let done = layout(&browser, &repo, SHA, 0);
    assert_eq!(done.banner, "Status: done (release promoted)");
    assert_eq!(done.banner_class, "verdict ok");
    done.assert_readable(8.0);
    done.assert_results_coloured();

    // Blocked: integration failed; nothing says "in progress".
    let repo = Repo::new();
    repo.record(ArtifactKind::Commit, SHA, |_| {});
    repo.record(ArtifactKind::Integration, SHA, |p| {
        p["result"] = "fail".into();
        p["command"]["exit_code"] = 1.into();
        p["tests"]["failed"] = 3.into();
    });
    let blocked = layout(&browser, &repo, SHA, 0);
    assert_eq!(blocked.banner, "Status: blocked (integration failed)");
    assert_eq!(blocked.banner_class, "verdict bad");
    blocked.assert_results_coloured();
    assert!(blocked.results.iter().any(|(w, _)| w == "fail"));
    let md = String::from_utf8_lossy(&repo.ledger(&["report", SHA]).stdout).into_owned();
    assert!(
        md.contains("**Status: blocked (integration failed)**"),
        "{md}"
    );
    let status =
        String::from_utf8_lossy(&repo.ledger(&["report", SHA, "--format", "status"]).stdout)
            .into_owned();
    assert!(status.starts_with("Status: blocked"), "{status}");

    // Nothing stored: not "FAILED verification", which reads as tampering.
    let other = "89abcdef0123456789abcdef0123456789abcdef";
    let none = layout(&browser, &repo, other, 4);
    assert_eq!(
        none.banner,
        format!("Status: no_evidence (no evidence stored for {other})")
    );
    assert_eq!(none.banner_class, "verdict none");
}
