use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::harness::{Test, assert_schema_valid, http_server};

/// A tiny HTTP server on a free loopback port: answers `503` to the first `unhealthy_for`
/// requests, then `200 ok`; stops after `limit` requests.
fn server(unhealthy_for: usize, limit: usize) -> (u16, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let port = http_server(limit, move || {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        let reply = if n < unhealthy_for {
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"
        } else {
            "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nall ok\n"
        };
        reply.to_owned()
    });
    (port, count)
}

/// `uses: http` goes through the same kind interface as every built-in: its `with:` is checked
/// at validation, it reports one JUnit case per URL and publishes an output a later stage reads.
#[test]
fn http_kind_waits_reports_cases_and_publishes_outputs() {
    let (port, count) = server(2, 100);
    let t = Test::new().pipeline(
        "p",
        &format!(
            r#"version: 1
stages:
  smoke:
    uses: http
    with:
      url: http://127.0.0.1:{port}/healthz
      contains: ok
      interval: 50ms
      within: 10s
  after:
    needs: [smoke]
    run: echo "${{{{ smoke.statuses }}}}" > statuses
"#
        ),
    );
    let out = t.run(&["run", "p", "--junit", "report.xml"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(count.load(Ordering::SeqCst) >= 3, "polled until healthy");
    assert_eq!(t.read("statuses"), "200\n");
    assert!(t.log("smoke").contains(": 503"), "{}", t.log("smoke"));
    let junit = t.read("report.xml");
    assert!(
        junit.contains(&format!("GET http://127.0.0.1:{port}/healthz")),
        "{junit}"
    );
    assert_schema_valid(&t.path().join("report.xml"));
}

#[test]
fn http_kind_fails_with_the_last_answer_and_rejects_bad_config() {
    let (port, _) = server(1000, 1000);
    let t = Test::new().pipeline(
        "p",
        &format!("version: 1\nstages:\n  smoke:\n    uses: http\n    with: {{ url: 'http://127.0.0.1:{port}/', within: 400ms, interval: 100ms }}\n"),
    );
    let out = t.run(&["run", "p"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("expected 200 within 400ms, last answer: 503"),
        "{out:?}"
    );
    assert!(t.junit().contains("<failure"), "{}", t.junit());

    let t = Test::new().pipeline(
        "p",
        "version: 1\nstages:\n  smoke:\n    uses: http\n    with:\n      url: https://example.com\n      expect: 999\n      retry: 3\n",
    );
    let out = t.run(&["validate", "p"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("`https://example.com` is not an `http://` URL"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("`expect` is out of range"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("unknown key `retry` in `with` of `http`"),
        "{}",
        out.stderr
    );
}
