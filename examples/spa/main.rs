//! An app on its own origin with a "Connect EmailOctopus" button.
//!
//! Start the connect server with this app's origin allowed, then the app:
//!
//! ```text
//! cargo run -- --sandbox --return-to-origins=http://127.0.0.1:8080   # prints its admin token
//! CONNECT_SERVER=http://127.0.0.1:3000 ADMIN_TOKEN=<the printed token> cargo run --example spa
//! ```
//!
//! and open http://127.0.0.1:8080. Settings (environment): `CONNECT_SERVER`
//! (default `http://127.0.0.1:3000`), `ADMIN_TOKEN` (required), `LISTEN_ADDR`
//! (default `127.0.0.1:8080`).

mod app;

#[tokio::main]
async fn main() {
    let setting =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let Ok(admin_token) = std::env::var("ADMIN_TOKEN") else {
        eprintln!("ADMIN_TOKEN: required: the connect server's admin token");
        std::process::exit(2);
    };
    let listen_addr = setting("LISTEN_ADDR", "127.0.0.1:8080");
    let listener = match tokio::net::TcpListener::bind(&listen_addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("LISTEN_ADDR: cannot listen on {listen_addr}: {error}");
            std::process::exit(2);
        }
    };
    let origin = format!(
        "http://{}",
        listener
            .local_addr()
            .expect("a bound listener has an address")
    );
    let settings = app::Settings {
        connect_server: setting("CONNECT_SERVER", "http://127.0.0.1:3000"),
        admin_token,
        origin: origin.clone(),
    };
    println!("example app on {origin}");
    axum::serve(listener, app::router(settings))
        .await
        .expect("the example app serves");
}
