//! `GET /connections` by end user, email, status, kind and tags, paged:
//! every page of every filter together holds each match once, in id order.

use std::time::Duration;

use emailoctopus_connect::checked::{ConnectionId, ConnectionKind, ConnectionStatus};
use emailoctopus_connect::store::ConnectionFilter;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::on_both_backends;
use crate::support::{start, Backend, TestApp, TestDb, TokenAnswer};

on_both_backends!(
    paging_through_every_filter_finds_each_match_once,
    bad_filters_limits_and_cursors_are_refused,
);

const CONNECTIONS: usize = 30;

/// What the test made, to say which connections each filter should find.
struct Made {
    id: String,
    user: String,
    oauth: bool,
    needs_reauth: bool,
    plan: &'static str,
    team: String,
}

/// Thirty connections: every third by OAuth (half of those then refused
/// at refresh), the rest by API key; five end users with mixed-case
/// emails; two plans and three teams as tags.
async fn thirty(app: &TestApp) -> Vec<Made> {
    let mut made = Vec::new();
    for i in 0..CONNECTIONS {
        let id = format!("c{i:02}");
        let oauth = i % 3 == 0;
        if oauth {
            assert_eq!(app.connect(&id).await.status(), StatusCode::OK);
        } else {
            app.connect_api_key(&id).await;
        }
        let user = format!("user-{}", i % 5);
        let (plan, team) = (["free", "pro"][i % 2], format!("t{}", i % 3));
        let patch = json!({
            "end_user": {"id": user, "email": format!("User{}@Example.org", i % 5)},
            "tags": {"plan": plan, "team": team},
        });
        let (status, body) = app
            .admin()
            .patch(&format!("/connections/{id}"), patch)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        made.push(Made {
            id,
            user,
            oauth,
            needs_reauth: false,
            plan,
            team,
        });
    }
    made
}

/// Which of the connections made a filter should find.
type Matches = fn(&Made) -> bool;

async fn refuse_some_refreshes(
    app: &TestApp,
    provider: &crate::support::FakeProvider,
    made: &mut [Made],
) {
    provider.set(|c| {
        c.refresh_override = Some((
            TokenAnswer::Status(400, r#"{"error":"invalid_grant"}"#),
            Duration::ZERO,
        ))
    });
    for m in made.iter_mut().filter(|m| m.oauth).step_by(2) {
        let (status, _) = app
            .admin()
            .post(&format!("/connections/{}/refresh", m.id), json!({}))
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        m.needs_reauth = true;
    }
}

/// Every page of `query` with `limit`, followed to the end: the ids in order.
async fn every_page(app: &TestApp, query: &str, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let cursor = after.map(|a| format!("&after={a}")).unwrap_or_default();
        let (status, page) = app
            .admin()
            .get(&format!("/connections?{query}&limit={limit}{cursor}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{query}: {page}");
        let connections = page["connections"].as_array().unwrap();
        ids.extend(
            connections
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned()),
        );
        match &page["next_cursor"] {
            Value::Null => return ids,
            Value::String(next) => {
                assert_eq!(
                    connections.len(),
                    limit,
                    "{query}: only a full page has a next"
                );
                after = Some(next.clone());
            }
            other => panic!("{query}: next_cursor {other}"),
        }
    }
}

async fn paging_through_every_filter_finds_each_match_once(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    let mut made = thirty(&app).await;
    refuse_some_refreshes(&app, &provider, &mut made).await;

    let filters: [(&str, Matches); 9] = [
        ("", |_| true),
        ("end_user_id=user-1", |m| m.user == "user-1"),
        // The query's case differs from the stored emails'.
        ("end_user_email=USER2%40example.ORG", |m| m.user == "user-2"),
        ("status=needs_reauth", |m| m.needs_reauth),
        ("status=connected", |m| !m.needs_reauth),
        ("kind=oauth", |m| m.oauth),
        ("tag=plan:pro", |m| m.plan == "pro"),
        ("tag=plan:pro&tag=team:t0", |m| {
            m.plan == "pro" && m.team == "t0"
        }),
        ("kind=api_key&tag=plan:free&end_user_id=user-3", |m| {
            !m.oauth && m.plan == "free" && m.user == "user-3"
        }),
    ];
    for (query, matches) in filters {
        let expected: Vec<String> = made
            .iter()
            .filter(|m| matches(m))
            .map(|m| m.id.clone())
            .collect();
        assert!(!expected.is_empty(), "{query}: the test made no match");
        assert_eq!(
            every_page(&app, query, 7).await,
            expected,
            "{query}, 7 a page"
        );
        let (_, all) = app.admin().get(&format!("/connections?{query}")).await;
        let unpaged: Vec<&str> = all["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(unpaged, expected, "{query}, without a limit");
        assert_eq!(all["next_cursor"], Value::Null);
    }
    // A page that ends exactly at the last match says there is no more.
    assert_eq!(every_page(&app, "", CONNECTIONS).await.len(), CONNECTIONS);
    let (_, nobody) = app
        .admin()
        .get("/connections?end_user_id=nobody&limit=7")
        .await;
    assert_eq!(
        (&nobody["connections"], &nobody["next_cursor"]),
        (&json!([]), &Value::Null)
    );
}

async fn bad_filters_limits_and_cursors_are_refused(backend: Backend) {
    let (_provider, _db, app) = start(backend, &[]).await;
    app.connect_api_key("only").await;
    for (query, member) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=seven", "limit"),
        ("after=%21%21", "after"),
        // Well-formed base64 of something that is no connection id.
        ("after=Li4", "after"),
        ("status=broken", "status"),
        ("kind=password", "kind"),
        ("tag=plan", "tag"),
        ("tag=bad%20key:v", "tag"),
        ("end_user_email=nobody", "end_user_email"),
        ("end_user_id=", "end_user_id"),
        ("tags=plan:pro", "query"),
        ("status=connected&status=needs_reauth", "query"),
    ] {
        let (status, body) = app.admin().get(&format!("/connections?{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&format!("{member}: ")),
            "{query}: {detail}"
        );
    }
}

/// SQLite plans the same on a small table as on a large one (it has no
/// statistics unless asked), so its plan shows what each filter's page
/// costs: a search along an index, never a scan of the table or a sort.
/// (Postgres prefers a scan on small tables; bench/listing.sh records its
/// plans at 100,000 connections.)
#[tokio::test]
async fn each_filter_pages_along_an_index() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.store().await;
    let tag = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let filters = [
        ConnectionFilter::default(),
        ConnectionFilter {
            end_user_id: Some("u".into()),
            ..Default::default()
        },
        ConnectionFilter {
            end_user_email: Some("A@b.c".into()),
            ..Default::default()
        },
        ConnectionFilter {
            status: Some(ConnectionStatus::NeedsReauth),
            ..Default::default()
        },
        ConnectionFilter {
            kind: Some(ConnectionKind::Oauth),
            ..Default::default()
        },
        ConnectionFilter {
            tags: vec![tag("plan", "pro")],
            ..Default::default()
        },
        ConnectionFilter {
            tags: vec![tag("plan", "pro"), tag("team", "t0")],
            status: Some(ConnectionStatus::Connected),
            ..Default::default()
        },
    ];
    let after = ConnectionId::parse("c17").unwrap();
    for filter in &filters {
        let plan = store.explain_find(filter, Some(&after)).await.unwrap();
        assert!(
            plan.iter()
                .all(|step| step.starts_with("SEARCH") || step.starts_with("CORRELATED")),
            "{filter:?}: {plan:?}"
        );
        assert!(
            plan.iter().all(|step| !step.contains("TEMP B-TREE")),
            "{filter:?}: {plan:?}"
        );
    }
}
