//! Who a connection belongs to in the app, and the app's tags on it: given
//! at the connect session, edited by merge patch, shown on every answer
//! and event, and found again by the filters of `GET /connections`.

mod bounds;
mod listing;
mod merge_patch;
mod reconnect;
mod through_sessions;

use serde_json::{json, Value};

/// The end user most tests give.
fn ada() -> Value {
    json!({"id": "user-ada", "email": "Ada@Example.org", "display_name": "Ada L."})
}
