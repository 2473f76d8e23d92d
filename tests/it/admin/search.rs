//! The operator's search box and paging, over plain HTTP.

use reqwest::StatusCode;
use serde_json::json;

use super::refusals::sign_in;
use crate::support::{new_key, Backend, FakeProvider, TestApp, TestDb};

#[tokio::test]
async fn the_search_box_finds_by_email_tag_end_user_and_connection_id_a_page_at_a_time() {
    let provider = FakeProvider::start().await;
    let db = TestDb::new(Backend::Sqlite).await;
    let mut args = provider.args();
    args.push(format!("--token-encryption-key={}", new_key()));
    let app = TestApp::start(&db, &args).await;
    for i in 0..55 {
        let id = format!("c{i:02}");
        app.connect_api_key(&id).await;
        let profile = json!({
            "end_user": { "id": format!("u{i:02}"), "email": format!("p{i:02}@example.com") },
            "tags": { "team": if i % 2 == 0 { "even" } else { "odd" } },
        });
        assert_eq!(
            app.admin()
                .patch(&format!("/connections/{id}"), profile)
                .await
                .0,
            StatusCode::OK
        );
    }
    let browser = app.browser();
    sign_in(&app, &browser).await;
    let page = |query: &str| {
        let (browser, url) = (browser.clone(), app.at(&format!("/admin?{query}")));
        async move {
            let answer = browser.get(url).send().await.unwrap();
            assert_eq!(answer.status(), StatusCode::OK);
            answer.text().await.unwrap()
        }
    };
    let rows = |html: &str| html.matches("<a href=\"/admin/connections/").count();

    let first = page("").await;
    assert_eq!(rows(&first), 50);
    assert!(first.contains("after=c49"), "a link to the next page");
    let second = page("after=c49").await;
    assert_eq!(rows(&second), 5);
    assert!(!second.contains("Next page"));

    let by_email = page("q=P07%40EXAMPLE.COM").await;
    assert_eq!(rows(&by_email), 1);
    assert!(by_email.contains("/admin/connections/c07"));
    let by_tag = page("q=team%3Aodd").await;
    assert_eq!(rows(&by_tag), 27);
    let by_end_user = page("q=u12").await;
    assert!(by_end_user.contains("/admin/connections/c12") && rows(&by_end_user) == 1);
    let by_id = page("q=c33").await;
    assert!(by_id.contains("/admin/connections/c33") && rows(&by_id) == 1);
    let nothing = page("q=nobody%40example.com").await;
    assert!(nothing.contains("No connection matches."));
    let needing = page("status=needs_reauth").await;
    assert_eq!(rows(&needing), 0);
}
