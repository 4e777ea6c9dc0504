//! What is kept of a wrapped command's output: bounded, whatever the command prints.
//!
//! Why: a command may print more than anyone can store or verify (hundreds of
//! megabytes of test noise). Keeping it whole cost `ledger` that much memory and
//! stored a log over the verifier's limit ([`ledger_verify::read::MAX_LOG_BYTES`]),
//! so the evidence never verified again. Here at most [`CAPTURE_LIMIT`] bytes are
//! kept: the first half and the last half of the output, with one marker line
//! between them naming how much was left out. The test counts are read from every
//! line as it passes, so leaving out the middle changes none of them.

use ledger_core::predicate::TestCounts;
use std::collections::VecDeque;

/// The most of a command's output kept (and stored as its log): well under the
/// verifier's limit, so the stored log always verifies, and small enough that
/// `ledger`'s memory stays bounded while it builds and stores the log.
pub const CAPTURE_LIMIT: usize = 32 * 1024 * 1024;

const _: () = assert!(CAPTURE_LIMIT <= ledger_verify::read::MAX_LOG_BYTES);

/// Room left for the marker line between head and tail.
const MARKER_ROOM: usize = 256;
const HEAD_LIMIT: usize = CAPTURE_LIMIT / 2;
const TAIL_LIMIT: usize = CAPTURE_LIMIT - HEAD_LIMIT - MARKER_ROOM;

/// The output kept so far and what was counted in all of it.
#[derive(Debug, Default)]
pub struct Capture {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: u64,
    counts: Counter,
}

/// A finished capture: the bytes to store as the log, and what they stand for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// The log: the whole output, or its head, a marker line and its tail.
    pub bytes: Vec<u8>,
    /// How many bytes the command printed (after redaction), all of them.
    pub total_bytes: u64,
    /// Whether the middle was left out.
    pub truncated: bool,
    /// Test counts read from the whole output.
    pub tests: Option<TestCounts>,
}

impl Capture {
    /// Adds one line (or one piece of an overlong line) of redacted output.
    pub fn push(&mut self, line: &[u8]) {
        self.counts.line(&String::from_utf8_lossy(line));
        self.total = self
            .total
            .saturating_add(u64::try_from(line.len()).unwrap_or(u64::MAX));
        let room = HEAD_LIMIT.saturating_sub(self.head.len());
        let (to_head, rest) = line.split_at(room.min(line.len()));
        self.head.extend_from_slice(to_head);
        self.tail.extend(rest);
        if self.tail.len() > TAIL_LIMIT {
            let excess = self.tail.len() - TAIL_LIMIT;
            self.tail.drain(..excess);
        }
    }

    /// The log to store, and the counts.
    pub fn finish(self) -> Captured {
        let kept = self.head.len() + self.tail.len();
        let total = self.total;
        let truncated = u64::try_from(kept).map_or(true, |k| k < total);
        let mut bytes = self.head;
        if truncated {
            let marker = format!(
                "\n[ledger: output truncated: {} of its {total} bytes left out here; the first {} and the last {} bytes are kept]\n",
                total.saturating_sub(kept as u64),
                bytes.len(),
                self.tail.len()
            );
            bytes.reserve_exact(marker.len() + self.tail.len());
            bytes.extend_from_slice(marker.as_bytes());
        }
        let (a, b) = self.tail.as_slices();
        bytes.extend_from_slice(a);
        bytes.extend_from_slice(b);
        Captured {
            bytes,
            total_bytes: total,
            truncated,
            tests: self.counts.finish(),
        }
    }
}

/// Test counts read line by line: cargo's `test result: … N passed; M failed; K
/// ignored` (summed over all test binaries), else the last `N passed, M failed[, K
/// skipped]` line (pytest and the plain form).
#[derive(Debug, Default)]
pub struct Counter {
    cargo: Option<TestCounts>,
    plain: Option<TestCounts>,
}

impl Counter {
    /// Reads one line.
    pub fn line(&mut self, line: &str) {
        for line in line.lines() {
            let counts = count_words(line);
            if line.contains("test result:") {
                if let Some(c) = counts {
                    let acc = self.cargo.get_or_insert(TestCounts {
                        passed: 0,
                        failed: 0,
                        ignored: 0,
                    });
                    // The output is the code under test's: sums saturate, never wrap
                    // a huge failure count around to zero.
                    acc.passed = acc.passed.saturating_add(c.passed);
                    acc.failed = acc.failed.saturating_add(c.failed);
                    acc.ignored = acc.ignored.saturating_add(c.ignored);
                }
            } else if counts.is_some() {
                self.plain = counts;
            }
        }
    }

    /// The counts, if any summary line was seen.
    pub fn finish(self) -> Option<TestCounts> {
        self.cargo.or(self.plain)
    }
}

/// Test counts from a whole output (see [`Counter`]).
pub fn test_counts(output: &[u8]) -> Option<TestCounts> {
    let mut counter = Counter::default();
    counter.line(&String::from_utf8_lossy(output));
    counter.finish()
}

/// A printed count: all ASCII digits, saturating at `u64::MAX` when it is larger
/// (a count too large to hold is still a count, never zero).
fn count(word: &str) -> Option<u64> {
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(word.parse::<u64>().unwrap_or(u64::MAX))
}

/// Reads `"<n> passed"`, `"<n> failed"`, `"<n> ignored|skipped"` pairs from one line.
fn count_words(line: &str) -> Option<TestCounts> {
    let words: Vec<&str> = line
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '=')
        .filter(|w| !w.is_empty())
        .collect();
    let mut c = TestCounts {
        passed: 0,
        failed: 0,
        ignored: 0,
    };
    let mut saw_passed = false;
    for pair in words.windows(2) {
        let Some(n) = count(pair[0]) else {
            continue;
        };
        match pair[1].trim_end_matches('.') {
            "passed" => {
                c.passed = n;
                saw_passed = true;
            }
            "failed" => c.failed = n,
            "ignored" | "skipped" => c.ignored = n,
            _ => {}
        }
    }
    saw_passed.then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_failure_counts_saturate_and_never_read_as_zero() {
        let max = u64::MAX;
        let out = format!(
            "test result: FAILED. 1 passed; {max} failed; 0 ignored\n\
             test result: FAILED. 1 passed; 5 failed; 0 ignored\n"
        );
        assert_eq!(test_counts(out.as_bytes()).map(|c| c.failed), Some(max));
        let beyond = b"test result: FAILED. 1 passed; 99999999999999999999999 failed; 0 ignored\n";
        assert_eq!(test_counts(beyond).map(|c| c.failed), Some(max));
        let plain = b"3 passed, 123456789012345678901234567890 failed\n";
        assert_eq!(test_counts(plain).map(|c| c.failed), Some(max));
    }

    #[test]
    fn cargo_summaries_are_summed() {
        let out = b"running 2 tests\ntest result: ok. 2 passed; 0 failed; 1 ignored; 0 measured\n\
                    test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured\n";
        assert_eq!(
            test_counts(out),
            Some(TestCounts {
                passed: 5,
                failed: 1,
                ignored: 1
            })
        );
    }

    #[test]
    fn pytest_and_plain_summaries() {
        assert_eq!(
            test_counts(b"===== 3 passed, 2 failed, 1 skipped in 0.12s =====\n"),
            Some(TestCounts {
                passed: 3,
                failed: 2,
                ignored: 1
            })
        );
        assert_eq!(
            test_counts(b"12 passed, 0 failed\n"),
            Some(TestCounts {
                passed: 12,
                failed: 0,
                ignored: 0
            })
        );
        assert_eq!(test_counts(b"nothing here\n"), None);
    }

    #[test]
    fn a_small_output_is_kept_whole() {
        let mut c = Capture::default();
        c.push(b"a\n");
        c.push(b"2 passed, 0 failed\n");
        let done = c.finish();
        assert_eq!(done.bytes, b"a\n2 passed, 0 failed\n");
        assert!(!done.truncated);
        assert_eq!(done.total_bytes, 21);
        assert_eq!(done.tests.map(|t| t.passed), Some(2));
    }

    #[test]
    fn a_large_output_keeps_head_and_tail_and_counts_from_the_middle() {
        let mut c = Capture::default();
        c.push(b"first line\n");
        let filler = vec![b'x'; 1024 * 1024];
        let mut total = 11u64;
        for i in 0..40 {
            c.push(&filler);
            total += filler.len() as u64;
            if i == 20 {
                c.push(b"test result: FAILED. 3 passed; 2 failed; 0 ignored\n");
                total += 51;
            }
        }
        c.push(b"last line\n");
        total += 10;
        let done = c.finish();
        assert!(done.truncated);
        assert_eq!(done.total_bytes, total);
        assert!(done.bytes.len() <= CAPTURE_LIMIT);
        assert!(done.bytes.starts_with(b"first line\n"));
        assert!(done.bytes.ends_with(b"last line\n"));
        let text = String::from_utf8_lossy(&done.bytes);
        assert!(text.contains("[ledger: output truncated: "), "marker");
        assert_eq!(done.tests.map(|t| t.failed), Some(2));
    }
}
