//! `GET /connect.js`: a small ES module any page may load, cacheable for good
//! under its content hash.

use reqwest::StatusCode;

use crate::support::{start, Backend};

#[tokio::test]
async fn the_connect_script_is_a_small_public_module_pinned_by_its_hash() {
    let (_provider, _db, app) = start(Backend::Sqlite, &[]).await;
    let answer = reqwest::get(app.at("/connect.js")).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let headers = answer.headers().clone();
    assert_eq!(headers["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert_eq!(headers["cache-control"], "public, max-age=300");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let script = answer.text().await.unwrap();
    assert!(script.contains("export function connect("), "{script}");
    let imports = script
        .lines()
        .any(|line| line.trim_start().starts_with("import "));
    assert!(!imports, "no dependencies");
    assert!(script.len() < 8 * 1024, "{} bytes", script.len());

    let version = etag.trim_matches('"');
    let pinned = reqwest::get(app.at(&format!("/connect.js?v={version}")))
        .await
        .unwrap();
    assert_eq!(
        pinned.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(pinned.text().await.unwrap(), script);
    // An old version's URL still gets the current script, but not for good.
    let stale = reqwest::get(app.at("/connect.js?v=0000")).await.unwrap();
    assert_eq!(stale.headers()["cache-control"], "public, max-age=300");

    let unchanged = reqwest::Client::new()
        .get(app.at("/connect.js"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);
}
