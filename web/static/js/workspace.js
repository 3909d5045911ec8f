// The agent's telephony controls on /agent: own queue status, wrap-up forms, click-to-call.
// Every answer is JSON; text from the server is only ever set with textContent.
"use strict";

(function () {
  const root = document.getElementById("workspace");
  if (!root) {
    return;
  }
  const csrf = root.dataset.csrf;
  const statusBox = document.getElementById("agent-status");
  const message = document.getElementById("status-message");
  const labelsNode = document.getElementById("status-labels");
  const labels = labelsNode ? JSON.parse(labelsNode.textContent) : {};

  async function post(url, fields) {
    const body = new URLSearchParams(fields);
    body.set("_csrf", csrf);
    try {
      const response = await fetch(url, {
        method: "POST",
        body: body,
        headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
        credentials: "same-origin",
      });
      const answer = await response.json();
      return { ok: response.ok, text: answer.error || answer.message || "" };
    } catch (error) {
      return { ok: false, text: root.dataset.failed };
    }
  }

  function say(node, result) {
    if (!node) {
      return;
    }
    node.textContent = result.text;
    node.className = result.ok ? "message" : "message error";
  }

  async function refresh() {
    try {
      const response = await fetch("/agent/status", { credentials: "same-origin" });
      if (!response.ok) {
        return;
      }
      const status = await response.json();
      statusBox.dataset.state = status.state;
      document.getElementById("status-state").textContent = labels[status.state] || status.state;
      document.getElementById("status-reason").textContent = status.reason || "";
      for (const box of document.querySelectorAll("#status-queues input[name=queue]")) {
        box.checked = status.queues.indexOf(box.value) >= 0;
      }
    } catch (error) {
      // the next action or reload shows the state again
    }
  }

  async function act(url, fields) {
    const result = await post(url, fields);
    say(message, result);
    await refresh();
  }

  for (const box of document.querySelectorAll("#status-queues input[name=queue]")) {
    box.addEventListener("change", function () {
      const action = box.checked ? "login" : "logout";
      act("/agent/status/" + action, { queue: box.value });
    });
  }
  const pause = document.getElementById("status-pause");
  if (pause) {
    pause.addEventListener("submit", function (event) {
      event.preventDefault();
      act(pause.dataset.action, { reason: pause.elements.reason.value });
    });
    const resume = document.getElementById("status-resume-button");
    resume.addEventListener("click", function () {
      act(resume.dataset.action, {});
    });
  }

  for (const form of document.querySelectorAll("form.wrapup")) {
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const fields = Object.fromEntries(new FormData(form).entries());
      const result = await post(form.dataset.action, fields);
      say(form.querySelector(".message"), result);
      if (result.ok) {
        form.dataset.saved = "true";
        for (const control of form.querySelectorAll("select, textarea, button[type=submit]")) {
          control.disabled = true;
        }
      }
    });
  }

  for (const button of document.querySelectorAll("button.dial")) {
    button.addEventListener("click", async function () {
      const result = await post(button.dataset.action, {
        number: button.dataset.number || "",
        ticket_id: button.dataset.ticket || "",
      });
      say(message, result);
    });
  }

  setInterval(refresh, 5000);
})();
