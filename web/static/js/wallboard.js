// The supervisor's live wallboard: snapshots pushed over server-sent events ("wallboard"
// events on /events), rendered with textContent only, never parsed as HTML. Colours come from
// CSS classes for the alarms the server decided (service level under target, long waits).
// Agent rows are kept and updated in place, so a reason being typed survives the pushes.
"use strict";

(function () {
  const root = document.getElementById("wallboard");
  if (!root) {
    return;
  }
  const labels = readJson("wb-labels");
  const names = readJson("wb-names");
  const queueRows = document.querySelector("#wb-queues tbody");
  const callerRows = document.querySelector("#wb-callers tbody");
  const agentRows = document.querySelector("#wb-agents tbody");
  const errorBox = document.getElementById("wb-error");
  let queueNames = [];

  function readJson(id) {
    try {
      return JSON.parse(document.getElementById(id).textContent);
    } catch (err) {
      console.error("bad embedded JSON", id, err);
      return {};
    }
  }

  function label(key, values) {
    let text = String(labels["wallboard." + key] || key);
    for (const [name, value] of Object.entries(values || {})) {
      text = text.split("{" + name + "}").join(String(value));
    }
    return text;
  }

  function percent(value) {
    const lang = document.documentElement.lang || undefined;
    return Number(value).toLocaleString(lang, { maximumFractionDigits: 1 }) + " %";
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) {
      return "—";
    }
    const total = Math.max(0, Math.round(Number(seconds)));
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = String(total % 60).padStart(2, "0");
    return h ? h + ":" + String(m).padStart(2, "0") + ":" + s : m + ":" + s;
  }

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

  function cell(row, className, text) {
    const td = element("td", className, text);
    row.appendChild(td);
    return td;
  }

  function callerText(name, number) {
    const parts = [name, number].filter((part) => part);
    return parts.length ? parts.join(" · ") : label("unknown_caller");
  }

  function renderQueues(queues) {
    queueRows.replaceChildren();
    for (const q of queues) {
      const row = element("tr", q.alarms && q.alarms.service_level ? "sl-low" : "");
      row.dataset.queue = String(q.name);
      cell(row, "q-name", q.name);
      cell(row, "q-waiting num", q.waiting);
      const longest = cell(row, "q-longest num", q.waiting ? duration(q.longest_wait) : "—");
      longest.classList.toggle("wait-long", Boolean(q.alarms && q.alarms.long_wait));
      cell(row, "q-answered num", q.answered);
      cell(row, "q-abandoned num", q.abandoned);
      const sl = cell(row, "q-sl num");
      sl.appendChild(element("span", "q-sl-value",
        q.service_level === null ? "—" : percent(q.service_level)));
      sl.appendChild(element("span", "q-sl-rule",
        label(q.abandoned_in_sl ? "sl_rule_with" : "sl_rule_without", { seconds: q.sl_seconds })));
      cell(row, "q-avg-wait num", duration(q.avg_wait));
      cell(row, "q-avg-talk num", duration(q.avg_talk));
      cell(row, "q-logged-in num", q.logged_in);
      cell(row, "q-available num", q.available);
      queueRows.appendChild(row);
    }
  }

  function renderCallers(queues) {
    callerRows.replaceChildren();
    for (const q of queues) {
      for (const c of q.callers || []) {
        const row = element("tr", c.long ? "wait-long" : "");
        row.dataset.linkedid = String(c.linkedid);
        cell(row, "c-queue", q.name);
        cell(row, "c-position num", c.position);
        cell(row, "c-caller", callerText(c.name, c.number));
        cell(row, "c-wait num", duration(c.wait));
        callerRows.appendChild(row);
      }
    }
    document.getElementById("wb-no-callers").hidden = callerRows.children.length > 0;
  }

  async function send(path, fields) {
    const body = new URLSearchParams(fields);
    try {
      const response = await fetch(path, {
        method: "POST",
        headers: { "X-CSRF-Token": root.dataset.csrf, Accept: "application/json" },
        body: body,
        credentials: "same-origin",
      });
      let answer = {};
      try {
        answer = await response.json();
      } catch (err) {
        answer = {};
      }
      errorBox.hidden = response.ok;
      errorBox.textContent = response.ok ? "" : String(answer.error || label("failed"));
    } catch (err) {
      errorBox.hidden = false;
      errorBox.textContent = label("failed");
    }
  }

  function button(className, text, onClick) {
    const node = element("button", className, text);
    node.type = "button";
    node.addEventListener("click", onClick);
    return node;
  }

  function newAgentRow(interfaceName) {
    const row = element("tr");
    row.dataset.interface = interfaceName;
    for (const name of ["a-name", "a-state", "a-since num", "a-call", "a-calls num", "a-queues"]) {
      cell(row, name);
    }
    const actions = cell(row, "a-actions");
    const pause = element("div", "wb-actions");
    const reason = element("input", "wb-reason");
    reason.maxLength = 80;
    reason.placeholder = label("reason");
    reason.setAttribute("list", "wb-reasons");
    reason.setAttribute("aria-label", label("reason"));
    pause.appendChild(reason);
    pause.appendChild(button("wb-pause", label("pause"), () =>
      send("/supervisor/agents/pause", { interface: interfaceName, reason: reason.value })));
    pause.appendChild(button("wb-resume", label("resume"), () =>
      send("/supervisor/agents/resume", { interface: interfaceName })));
    const member = element("div", "wb-actions");
    const queue = element("select", "wb-queue");
    queue.setAttribute("aria-label", label("queue"));
    member.appendChild(queue);
    member.appendChild(button("wb-login", label("log_in"), () =>
      send("/supervisor/agents/login", { interface: interfaceName, queue: queue.value })));
    member.appendChild(button("wb-logout", label("log_out"), () =>
      send("/supervisor/agents/logout", { interface: interfaceName, queue: queue.value })));
    actions.appendChild(pause);
    actions.appendChild(member);
    if (root.dataset.spy) {
      // Listening in rings the supervisor's own phone (data-spy) into the agent's call.
      const spy = element("div", "wb-actions wb-spy");
      for (const mode of ["listen", "whisper", "barge"]) {
        spy.appendChild(button("wb-" + mode, label("spy_" + mode), () =>
          send("/supervisor/spy/" + mode, { interface: interfaceName })));
      }
      actions.appendChild(spy);
    }
    return row;
  }

  function fillQueueSelect(select) {
    if (select.dataset.options === queueNames.join("\n")) {
      return;
    }
    const chosen = select.value;
    select.replaceChildren();
    for (const name of queueNames) {
      const option = element("option", null, name);
      option.value = name;
      select.appendChild(option);
    }
    if (queueNames.includes(chosen)) {
      select.value = chosen;
    }
    select.dataset.options = queueNames.join("\n");
  }

  // Staff agents with a phone who are in no queue: listed after the others, so that the
  // supervisor can log them into one.
  function withoutQueue(agents) {
    const live = new Set(agents.map((a) => String(a.interface)));
    return Object.keys(names).sort().filter((key) => !live.has(key)).map((key) => ({
      interface: key, name: names[key], state: "none", reason: "", seconds: null,
      queues: [], paused_queues: [], calls_today: "—",
    }));
  }

  function renderAgents(agents) {
    agents = agents.concat(withoutQueue(agents));
    const existing = new Map();
    for (const row of agentRows.children) {
      existing.set(row.dataset.interface, row);
    }
    const seen = new Set();
    let index = 0;
    for (const a of agents) {
      const key = String(a.interface);
      seen.add(key);
      let row = existing.get(key);
      if (!row) {
        row = newAgentRow(key);
      }
      row.className = "state-" + String(a.state).replace(/[^a-z_]/g, "");
      const cells = row.children;
      cells[0].replaceChildren(element("span", "a-display", names[key] || a.name || key),
        element("span", "a-interface", key));
      const state = label("state_" + a.state);
      cells[1].textContent = a.reason ? state + " — " + a.reason : state;
      cells[2].textContent = duration(a.seconds);
      cells[3].textContent = a.caller_number || a.caller_name
        ? callerText(a.caller_name, a.caller_number) + (a.queue ? " (" + a.queue + ")" : "")
        : "—";
      cells[4].textContent = a.calls_today;
      const paused = new Set(a.paused_queues || []);
      cells[5].textContent = (a.queues || [])
        .map((q) => (paused.has(q) ? q + " (" + label("paused_in") + ")" : q))
        .join(", ") || "—";
      fillQueueSelect(row.querySelector("select.wb-queue"));
      for (const spy of row.querySelectorAll(".wb-spy button")) {
        spy.disabled = a.state !== "on_call";
      }
      // Move a row only when it is out of place: moving it would take the focus from its input.
      const here = agentRows.children[index] || null;
      if (here !== row) {
        agentRows.insertBefore(row, here);
      }
      index += 1;
    }
    for (const [key, row] of existing) {
      if (!seen.has(key)) {
        row.remove();
      }
    }
    document.getElementById("wb-no-agents").hidden = agents.length > 0;
  }

  function renderTiles(tiles) {
    for (const tile of document.querySelectorAll("#wb-tiles .wb-tile")) {
      const name = tile.dataset.tile;
      const data = tiles ? tiles[name] : null;
      const value = tile.querySelector(".t-value");
      const detail = tile.querySelector(".t-detail");
      if (!data) {
        value.textContent = "—";
        detail.textContent = "";
        tile.className = "wb-tile";
        continue;
      }
      if (name === "repeat") {
        value.textContent = data.percent === null ? "—" : percent(data.percent);
        detail.textContent = label("repeat_detail", { repeated: data.repeated, solved: data.solved });
        tile.classList.toggle("over-goal", Boolean(data.over_goal));
      } else {
        value.textContent = String(data.count);
        detail.textContent = data.count ? label("oldest", { wait: duration(data.oldest) }) : "";
      }
      tile.classList.toggle("alarm", Boolean(data.alarm));
    }
  }

  function render(board) {
    const queues = Array.isArray(board.queues) ? board.queues : [];
    const agents = Array.isArray(board.agents) ? board.agents : [];
    queueNames = queues.map((q) => String(q.name));
    if (board.policy) {
      document.getElementById("wb-policy").textContent = label("policy", {
        target: percent(board.policy.service_level_target),
        wait: duration(board.policy.long_wait_seconds),
      }) + " " + label("policy_written", {
        promise: board.policy.answer_promise_minutes,
        goal: percent(board.policy.repeat_contact_goal),
        alarm: percent(board.policy.repeat_contact_alarm),
      });
    }
    renderTiles(board.tiles);
    renderQueues(queues);
    renderCallers(queues);
    renderAgents(agents);
    root.dataset.at = String(board.at || "");
  }

  render(readJson("wb-initial"));
  const stream = document.getElementById("wb-stream");
  if (!window.EventSource) {
    return;
  }
  const source = new EventSource(root.dataset.stream);
  source.addEventListener("open", () => {
    stream.textContent = label("stream_connected");
    root.dataset.state = "open";
  });
  source.addEventListener("error", () => {
    stream.textContent = label("stream_lost");
    root.dataset.state = "closed";
  });
  source.addEventListener("wallboard", (event) => {
    try {
      render(JSON.parse(event.data));
    } catch (err) {
      console.error("bad wallboard event", err);
    }
  });
})();
