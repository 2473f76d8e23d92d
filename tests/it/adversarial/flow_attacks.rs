//! Attacks on the authorization flow: the attacker's code under the victim's
//! state, a state swapped between two flows, a used code replayed, a provider
//! that ignores PKCE, and the page the code lands on giving a third party
//! nothing.

use crate::support::query_param;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::support::{assert_no_secret, connections, refused_page};
use crate::on_both_backends;
use crate::support::{location, start, Backend};

on_both_backends!(
    an_attackers_code_under_the_victims_state_is_refused,
    a_state_swapped_between_two_flows_is_refused,
    a_used_code_replayed_into_another_flow_is_refused,
    a_provider_that_ignores_pkce_still_gets_the_verifier,
);

/// `url` with the parameter `name` set to `value`.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut url = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == name {
                (k, value.to_owned())
            } else {
                (k, v)
            }
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

async fn an_attackers_code_under_the_victims_state_is_refused(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    // The attacker gets a code for their own account and keeps it unused.
    let attacker = app.browser();
    let attackers = app.begin(&attacker, &app.session("attacker").await).await;
    let stolen_code = query_param(&attackers, "code");
    // The victim starts a flow; the attacker swaps their code into the
    // victim's callback, keeping the victim's own (valid) state.
    let victim = app.browser();
    let victims = app.begin(&victim, &app.session("victim").await).await;
    let injected = with_param(&victims, "code", &stolen_code);
    let page = refused_page(
        victim.get(&injected).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "did not accept the sign-in",
        &provider,
    )
    .await;
    assert_no_secret(&page, &provider, &[&stolen_code]);
    // PKCE stopped it: the code went out with the victim's verifier, which
    // does not match the challenge the attacker's code was issued for.
    let exchanges = provider.token_requests("authorization_code");
    assert_eq!(exchanges.len(), 1);
    assert_eq!(exchanges[0].form["code"], stolen_code);
    assert_eq!(connections(&app).await, json!([]));
    // The victim's flow is used up by the attempt: nothing half-done remains.
    refused_page(
        victim.get(&victims).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "connection was not made",
        &provider,
    )
    .await;
    assert_eq!(connections(&app).await, json!([]));
}

async fn a_state_swapped_between_two_flows_is_refused(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    let browser = app.browser();
    let first = app.begin(&browser, &app.session("first").await).await;
    let second = app.begin(&browser, &app.session("second").await).await;
    // Each flow's code under the other flow's state: each verifier goes out
    // with a code that was not issued for it, so neither connection can end
    // up holding the other's account.
    for (code_from, state_from) in [(&first, &second), (&second, &first)] {
        let swapped = with_param(code_from, "state", &query_param(state_from, "state"));
        refused_page(
            browser.get(&swapped).send().await.unwrap(),
            StatusCode::BAD_REQUEST,
            "did not accept the sign-in",
            &provider,
        )
        .await;
    }
    assert_eq!(provider.token_requests("authorization_code").len(), 2);
    assert_eq!(connections(&app).await, json!([]));
    // Both flows are spent (the provider also burns a code on a failed
    // redemption): the genuine callbacks are refused too, and still nothing is stored.
    for genuine in [&first, &second] {
        refused_page(
            browser.get(genuine.as_str()).send().await.unwrap(),
            StatusCode::BAD_REQUEST,
            "connection was not made",
            &provider,
        )
        .await;
    }
    assert_eq!(connections(&app).await, json!([]));
}

async fn a_used_code_replayed_into_another_flow_is_refused(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    let victim = app.browser();
    let victims = app.begin(&victim, &app.session("victim").await).await;
    assert_eq!(
        victim.get(&victims).send().await.unwrap().status(),
        StatusCode::OK
    );
    let (_, before) = app.admin().get("/connections/victim").await;
    // The code leaked (a log, a Referer); the attacker replays it in a flow
    // of their own, whose state and cookie are genuine.
    let attacker = app.browser();
    let attackers = app.begin(&attacker, &app.session("attacker").await).await;
    let replayed = with_param(&attackers, "code", &query_param(&victims, "code"));
    refused_page(
        attacker.get(&replayed).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "did not accept the sign-in",
        &provider,
    )
    .await;
    assert_eq!(
        app.admin().get("/connections/attacker").await.0,
        StatusCode::NOT_FOUND
    );
    let (_, after) = app.admin().get("/connections/victim").await;
    assert_eq!(after, before, "the victim's connection changed");
}

async fn a_provider_that_ignores_pkce_still_gets_the_verifier(backend: Backend) {
    let (provider, _db, app) = start(backend, &[]).await;
    provider.settings(|s| s.pkce = false);
    let browser = app.browser();
    let session = app.session("downgrade").await;
    let auth = browser
        .get(app.at(&format!("/auth?session={session}")))
        .send()
        .await
        .unwrap();
    let authorize = location(&auth);
    assert_eq!(query_param(&authorize, "code_challenge_method"), "S256");
    let challenge = query_param(&authorize, "code_challenge");
    let back = browser.get(&authorize).send().await.unwrap();
    let done = browser.get(location(&back)).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    let page = done.text().await.unwrap();

    let exchange = &provider.token_requests("authorization_code")[0];
    let verifier = &exchange.form["code_verifier"];
    // RFC 7636 §4.1: 43 to 128 unreserved characters; §4.2: S256 of it.
    assert!((43..=128).contains(&verifier.len()), "{verifier}");
    assert!(verifier
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)));
    assert_eq!(
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        challenge,
        "the verifier does not match the challenge sent in /auth"
    );
    // The verifier travels only in the back channel.
    assert!(!authorize.contains(verifier.as_str()));
    assert_no_secret(&page, &provider, &[verifier]);
}

/// RFC 9700 §4.2 and §4.16: the page the code lands on, and the connect page,
/// give a third party nothing: no Referer, no cache copy, no frame, no
/// resource from elsewhere.
#[tokio::test]
async fn the_callback_and_connect_pages_leak_nothing_to_third_parties() {
    let (provider, _db, app) = start(Backend::Sqlite, &[]).await;
    let browser = app.browser();
    let session = app.session("quiet").await;
    let connect_page = browser
        .get(app.at(&format!("/?session={session}")))
        .send()
        .await
        .unwrap();
    let callback = app.begin(&browser, &session).await;
    let landed = browser.get(&callback).send().await.unwrap();
    assert_eq!(landed.status(), StatusCode::OK);
    for page in [connect_page, landed] {
        let headers = page.headers().clone();
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["x-frame-options"], "DENY");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'self'"),
            "{csp}"
        );
        let html = page.text().await.unwrap();
        for attribute in ["src=\"", "href=\"", "action=\""] {
            for target in html.split(attribute).skip(1) {
                assert!(
                    target.starts_with('/') && !target.starts_with("//"),
                    "a resource or link off this origin: {attribute}{}",
                    &target[..target.len().min(40)]
                );
            }
        }
        assert_no_secret(&html, &provider, &[&query_param(&callback, "code")]);
    }
}
