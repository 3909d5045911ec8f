// The customer page: remote images in an email load only when the agent asks for them.
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
