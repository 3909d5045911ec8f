// The agent's live panel: cards pushed over server-sent events from /events.
// Customer text is only ever set with textContent, never parsed as HTML.
//
// A "card" event carries JSON: {id, title, subtitle, fields: [[label, value], ...], customer_id}.
"use strict";

(function () {
  const MAX_CARDS = 20;
  const panel = document.getElementById("pops");
  if (!panel || !window.EventSource) {
    return;
  }
  const cards = document.getElementById("pop-cards");
  const empty = document.getElementById("pops-empty");
  const state = document.getElementById("stream-state");

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function renderCard(card) {
    const box = element("article", "card");
    box.dataset.cardId = String(card.id || "");
    const title = element("h3", "card-title");
    if (Number.isInteger(card.customer_id)) {
      const link = element("a", null, card.title || "#" + card.customer_id);
      link.href = "/customers/" + card.customer_id;
      title.appendChild(link);
    } else {
      title.textContent = String(card.title || "");
    }
    box.appendChild(title);
    if (card.subtitle) {
      box.appendChild(element("p", "card-subtitle", card.subtitle));
    }
    if (Array.isArray(card.fields) && card.fields.length) {
      const list = element("dl", "card-fields");
      for (const pair of card.fields) {
        if (!Array.isArray(pair) || pair.length < 2) {
          continue;
        }
        list.appendChild(element("dt", null, pair[0]));
        list.appendChild(element("dd", null, pair[1]));
      }
      box.appendChild(list);
    }
    return box;
  }

  function show(card) {
    const box = card.type === "screenpop" && window.ScreenPop
      ? window.ScreenPop.render(card)
      : renderCard(card);
    const previous = card.id
      ? Array.from(cards.children).find((c) => c.dataset.cardId === String(card.id))
      : null;
    if (previous) {
      cards.replaceChild(box, previous);
    } else {
      cards.insertBefore(box, cards.firstChild);
    }
    while (cards.children.length > MAX_CARDS) {
      cards.removeChild(cards.lastChild);
    }
    empty.hidden = cards.children.length > 0;
  }

  const source = new EventSource(panel.dataset.stream);
  source.addEventListener("open", () => {
    state.textContent = panel.dataset.connected;
    panel.dataset.state = "open";
  });
  source.addEventListener("error", () => {
    state.textContent = panel.dataset.disconnected;
    panel.dataset.state = "closed";
  });
  source.addEventListener("card", (event) => {
    try {
      const card = JSON.parse(event.data);
      show(card);
      if (card.type === "screenpop" && window.ScreenPop) {
        window.ScreenPop.alert(card);
      }
    } catch (err) {
      console.error("bad card event", err);
    }
  });
})();
