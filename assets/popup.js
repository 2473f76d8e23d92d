// In a popup connect session, tells the app's page (window.opener) how the
// connect went: to exactly the session's origin, never a token. The page's
// connect.js also asks the server, so nothing depends on this message alone
// (a provider's Cross-Origin-Opener-Policy can cut the tie to the opener).
const notice = document.getElementById("eoc-popup");
if (notice) {
  const data = notice.dataset;
  if (window.opener) {
    window.opener.postMessage(
      {
        type: "emailoctopus-connect",
        status: data.status,
        connection_id: data.connectionId,
        kind: data.kind || null,
      },
      data.origin,
    );
  }
  // Browsers let a script close only a window a script opened; elsewhere the
  // page's words ("You can close this window") remain.
  if (data.status === "connected") window.close();
}
