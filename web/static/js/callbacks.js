// The callback list, kept current: a "callback" event on the user's stream (/events) means
// a callback was created, claimed, done or failed; the rows are fetched again, rendered and
// escaped by the server like the page itself. Events arriving together cause one fetch.
"use strict";

(function () {
  const DELAY_MS = 200;
  const table = document.getElementById("callbacks");
  if (!table || !window.EventSource) {
    return;
  }
  const body = table.tBodies[0];
  let timer = null;
  let again = false;
  let fetching = false;

  async function refresh() {
    timer = null;
    if (fetching) {
      again = true;
      return;
    }
    fetching = true;
    try {
      const response = await fetch(table.dataset.rows, {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
      });
      if (response.ok) {
        body.innerHTML = await response.text();
        table.dataset.refreshed = String(Number(table.dataset.refreshed || 0) + 1);
      }
    } catch (err) {
      console.error("could not refresh the callbacks", err);
    } finally {
      fetching = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  }

  function schedule() {
    if (timer === null) {
      timer = setTimeout(refresh, DELAY_MS);
    }
  }

  const source = new EventSource(table.dataset.stream);
  source.addEventListener("open", () => {
    if (table.dataset.state === "lost") {
      schedule(); // changes may have been missed while disconnected
    }
    table.dataset.state = "open";
  });
  source.addEventListener("error", () => {
    table.dataset.state = "lost";
  });
  source.addEventListener("callback", schedule);
})();
