// The screen-pop card: who is calling and what they told us before.
// Every customer-controlled string is set with textContent; links are built only from
// integer ids. Exposes window.ScreenPop = {render(card), alert(card)} for events.js.
"use strict";

(function () {
  const panel = document.getElementById("pops");
  const labelsNode = document.getElementById("pop-labels");
  if (!panel || !labelsNode) {
    return;
  }
  const L = JSON.parse(labelsNode.textContent);
  const csrf = panel.dataset.csrf || "";

  function t(key, values) {
    let text = L[key] || key;
    for (const [name, value] of Object.entries(values || {})) {
      text = text.split("{" + name + "}").join(String(value));
    }
    return text;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function when(iso) {
    const date = new Date(iso);
    return isNaN(date) ? "" : date.toLocaleString();
  }

  function ago(iso) {
    const minutes = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 60000));
    if (minutes < 60) return t("pop.ago_minutes", { n: minutes });
    if (minutes < 48 * 60) return t("pop.ago_hours", { n: Math.round(minutes / 60) });
    return t("pop.ago_days", { n: Math.round(minutes / 1440) });
  }

  function facts(card) {
    const line = el("p", "pop-facts");
    const parts = [t("pop.language") + ": " + card.language];
    if (card.last_contact_at) {
      parts.push(t("pop.last_contact") + ": " + when(card.last_contact_at) +
        " (" + ago(card.last_contact_at) + ")");
    }
    line.textContent = parts.join(" · ");
    for (const tag of card.tags || []) line.appendChild(el("span", "tag", tag));
    return line;
  }

  function section(title, className) {
    const box = el("section", "pop-section " + (className || ""));
    box.appendChild(el("h4", null, title));
    return box;
  }

  function timelineItem(item) {
    const row = el("li", "pop-item channel-" + item.channel + " dir-" + item.direction);
    row.appendChild(el("span", "pop-channel", t("channel." + item.channel)));
    row.appendChild(el("time", "pop-time", when(item.at)));
    row.appendChild(el("span", "pop-excerpt", item.excerpt));
    for (const order of item.order_numbers || []) {
      row.appendChild(el("mark", "pop-order", "№" + order));
    }
    return row;
  }

  function hiddenInput(name, value) {
    const input = el("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    return input;
  }

  function unknownActions(card) {
    const box = section(t("pop.unknown_hint"), "pop-unknown");
    const search = el("form", "inline");
    search.method = "get";
    search.action = "/agent";
    const query = el("input");
    query.name = "q";
    query.value = card.caller_number;
    search.appendChild(query);
    search.appendChild(el("button", null, t("pop.search")));
    box.appendChild(search);

    const link = el("form", "inline pop-link");
    link.method = "post";
    link.action = "/callers/link";
    link.appendChild(hiddenInput("_csrf", csrf));
    link.appendChild(hiddenInput("phone", card.caller_number));
    link.appendChild(el("label", null, t("pop.link_to")));
    const id = el("input");
    id.name = "customer_id";
    id.inputMode = "numeric";
    id.pattern = "[0-9]+";
    id.required = true;
    link.appendChild(id);
    link.appendChild(el("button", null, t("pop.link")));
    box.appendChild(link);

    const create = el("form", "inline pop-create");
    create.method = "post";
    create.action = "/callers/link";
    create.appendChild(hiddenInput("_csrf", csrf));
    create.appendChild(hiddenInput("phone", card.caller_number));
    const name = el("input");
    name.name = "name";
    name.placeholder = t("pop.name");
    name.maxLength = 200;
    create.appendChild(name);
    create.appendChild(el("button", null, t("pop.create")));
    box.appendChild(create);
    return box;
  }

  function crmSection(crm) {
    const box = section(t("pop.crm"), "pop-crm");
    const list = el("dl");
    for (const [key, label] of [["company", "pop.crm_company"], ["manager", "pop.crm_manager"],
      ["deal_stage", "pop.crm_stage"], ["lifetime_value", "pop.crm_value"]]) {
      if (!crm[key]) continue;
      list.appendChild(el("dt", null, t(label)));
      list.appendChild(el("dd", "crm-" + key, crm[key]));
    }
    box.appendChild(list);
    return box;
  }

  function render(card) {
    const box = el("article", "card screenpop" + (card.known ? "" : " unknown"));
    box.dataset.cardId = String(card.id || "");
    const head = el("header", "pop-head");
    head.appendChild(el("span", "pop-ringing", t("pop.ringing")));
    const title = el("h3", "card-title");
    if (card.known && Number.isInteger(card.customer_id)) {
      const a = el("a", null, card.name || "#" + card.customer_id);
      a.href = "/customers/" + card.customer_id;
      title.appendChild(a);
    } else {
      title.textContent = t("pop.unknown");
    }
    head.appendChild(title);
    const where = card.queue ? " · " + t("pop.queue", { queue: card.queue }) : "";
    head.appendChild(el("p", "card-subtitle", card.caller_number + where));
    box.appendChild(head);

    if (card.crm) box.appendChild(crmSection(card.crm));
    if (!card.known) {
      if (card.caller_name) box.appendChild(el("p", "pop-callerid", card.caller_name));
      box.appendChild(unknownActions(card));
      return box;
    }
    box.appendChild(facts(card));
    if (card.opening_line) {
      const opening = section(t("pop.opening"), "pop-opening");
      opening.appendChild(el("blockquote", null, card.opening_line));
      box.appendChild(opening);
    }
    if (card.repeat_order) {
      box.appendChild(el("p", "pop-repeat", t("pop.repeat", { order: card.repeat_order })));
    }
    if (card.unanswered || card.promise) {
      const pending = section(t("pop.unanswered"), "pop-pending");
      const list = el("ul");
      if (card.unanswered) list.appendChild(timelineItem(card.unanswered));
      if (card.promise) {
        const row = timelineItem(card.promise);
        row.insertBefore(el("strong", null, t("pop.promise") + ": "), row.firstChild);
        list.appendChild(row);
      }
      pending.appendChild(list);
      box.appendChild(pending);
    }
    const who = section(t("pop.identities"), "pop-identities");
    const ids = el("ul");
    for (const ident of card.identities || []) {
      ids.appendChild(el("li", "ident", t("kind." + ident.kind) + ": " + ident.value));
    }
    who.appendChild(ids);
    box.appendChild(who);
    if ((card.tickets || []).length) {
      const tickets = section(t("pop.tickets"), "pop-tickets");
      const list = el("ul");
      for (const ticket of card.tickets) {
        const row = el("li", "pop-ticket");
        row.appendChild(el("span", "pop-ticket-id", "#" + ticket.id));
        row.appendChild(el("span", "pop-status", t("ticket." + ticket.status)));
        row.appendChild(el("span", "pop-subject", ticket.subject));
        for (const intent of ticket.intents || []) row.appendChild(el("span", "tag", intent));
        for (const order of ticket.order_numbers || []) {
          row.appendChild(el("mark", "pop-order", "№" + order));
        }
        list.appendChild(row);
      }
      tickets.appendChild(list);
      box.appendChild(tickets);
    }
    const history = section(t("pop.timeline"), "pop-timeline");
    const list = el("ol");
    for (const item of card.timeline || []) list.appendChild(timelineItem(item));
    history.appendChild(list);
    box.appendChild(history);
    return box;
  }

  // Sound and desktop notifications; the agent can mute, the choice is remembered.
  const soundButton = document.getElementById("pop-sound");
  const notifyButton = document.getElementById("pop-notify");
  let muted = window.localStorage.getItem("cc.muted") === "1";

  function paintSound() {
    soundButton.setAttribute("aria-pressed", muted ? "false" : "true");
    soundButton.textContent = muted ? t("agent.sound_off") : t("agent.sound");
  }
  if (soundButton) {
    paintSound();
    soundButton.addEventListener("click", () => {
      muted = !muted;
      window.localStorage.setItem("cc.muted", muted ? "1" : "0");
      paintSound();
    });
  }
  if (notifyButton && window.Notification) {
    notifyButton.addEventListener("click", () => window.Notification.requestPermission());
  } else if (notifyButton) {
    notifyButton.hidden = true;
  }

  function ring() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (muted || !Context) return;
    try {
      const audio = new Context();
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.frequency.value = 880;
      gain.gain.value = 0.1;
      tone.connect(gain).connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.4);
    } catch (err) {
      console.warn("no sound", err);
    }
  }

  function alert(card) {
    ring();
    if (window.Notification && window.Notification.permission === "granted") {
      const title = card.known ? (card.name || card.caller_number) : t("pop.unknown");
      new window.Notification(title, { body: card.opening_line || card.caller_number, tag: card.id });
    }
    panel.dataset.lastPop = String(card.id || "");
  }

  window.ScreenPop = { render, alert };
})();
