//! The operator's page at `/admin`: signing in and out, what it refuses
//! (a wrong token, a missing or foreign form token, a post from another
//! site, an expired or forged session), and, in Chromium, finding a
//! connection, opening it, making a connect link and deleting one.

mod in_the_browser;
mod refusals;
mod search;
