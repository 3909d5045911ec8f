// The customer page: remote images in an email load only when the agent asks for them; a
// ticket's call button rings the agent's phone, then the customer's, and says so in place.
"use strict";

document.querySelectorAll("button.show-images").forEach((button) => {
  button.addEventListener("click", () => {
    const frame = document.getElementById(button.dataset.frame);
    if (!frame) {
      return;
    }
    const url = new URL(frame.getAttribute("src"), window.location.href);
    url.searchParams.set("images", "1");
    frame.src = url.pathname + url.search;
    button.disabled = true;
  });
});

document.querySelectorAll("form.ticket-call").forEach((form) => {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const output = form.querySelector("output");
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      const answer = await response.json();
      output.textContent = answer.error || answer.message || "";
      output.className = response.ok ? "message" : "message error";
    } catch (error) {
      output.textContent = String(error);
      output.className = "message error";
    }
  });
});
