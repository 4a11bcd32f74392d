// The supervisor's board: read whole from /api/board each time the WebSocket says something
// changed, and on every (re)connection. Text from the server is set with textContent only.
"use strict";

const root = document.getElementById("board");
const text = (key) => root.querySelector(`[data-text="${key}"]`)?.textContent ?? key;

function row(cells, className) {
  const tr = document.createElement("tr");
  if (className) tr.className = className;
  for (const cell of cells) {
    const td = document.createElement("td");
    td.textContent = cell;
    tr.append(td);
  }
  return tr;
}

function minutes(seconds) {
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

// The board as last read, and the filters that narrow what it shows (on this page only).
let latest = null;
const filters = document.getElementById("board-filters");
filters.addEventListener("change", () => latest && render(latest));

function shownQueue(queue) {
  const chosen = new FormData(filters);
  return (!chosen.get("service") || queue.service === chosen.get("service"))
    && (!chosen.get("line") || String(queue.line) === chosen.get("line"));
}

function render(everything) {
  latest = everything;
  const chosen = new FormData(filters);
  const board = {
    ...everything,
    queues: everything.queues.filter(shownQueue).map((queue) => ({
      ...queue,
      items: queue.items.filter((item) => !chosen.get("channel") || item.channel === chosen.get("channel")),
    })),
    agents: everything.agents.filter((agent) => !chosen.get("state") || agent.state === chosen.get("state")),
  };
  document.getElementById("queue-rows").replaceChildren(
    ...board.queues.map((queue) =>
      row([queue.name, queue.waiting, queue.waiting ? minutes(queue.longest_wait_seconds) : "–", queue.available,
        serviceLevel(queue)], queue.waiting && !queue.available ? "alert" : "")),
  );
  // The formulas the figures use, each once, so that nobody has to guess what a percentage counts.
  const formulas = new Set(board.queues.map((queue) =>
    `${text(`sl-${queue.service_level_formula}`)} (${queue.service_level_seconds} s)`));
  document.getElementById("sl-formulas").textContent = `${text("sl-is")} ${[...formulas].join("; ")}`;
  document.getElementById("agent-rows").replaceChildren(
    ...board.agents.map((agent) => {
      const state = text(`state-${agent.state}`) + (agent.away_reason ? ` (${agent.away_reason})` : "")
        + (agent.state_seconds === null ? "" : ` · ${minutes(agent.state_seconds)}`);
      const asking = agent.help_seconds === null ? "" : `${text("asks-help")} ${minutes(agent.help_seconds)}`;
      const tr = row(["", state, agent.items, asking, call(agent.call)],
        agent.help_seconds === null ? `agent-${agent.state}` : "alert");
      const name = document.createElement("a");
      name.href = `/board/agents/${agent.id}`;
      name.textContent = agent.name;
      tr.children[0].append(name);
      if (agent.help_seconds !== null) {
        const messages = document.createElement("ul");
        messages.className = "help-messages";
        for (const message of agent.help_messages) {
          const item = document.createElement("li");
          item.textContent = `${message.author}: ${message.text}`;
          messages.append(item);
        }
        tr.children[3].append(messages, form("reply-template", `/board/agents/${agent.id}/help-reply`, () => {}),
          " ", form("helped-template", `/board/agents/${agent.id}/helped`, () => {}));
      }
      // Coaching happens through the supervisor's own softphone.
      if (agent.call && board.softphone) {
        tr.children[4].append(" ", form("coach-template", `/board/items/${agent.call.item}/coach`, () => {}));
      }
      // Only an agent who logged in to the workspace has a presence to set.
      const cell = document.createElement("td");
      if (agent.state !== "offline") cell.append(form("presence-template", `/board/agents/${agent.id}/presence`, () => {}));
      tr.append(cell);
      return tr;
    }),
  );
  renderItems(board);
}

// Today's service level with what it counts.
function serviceLevel(queue) {
  const counts = `${queue.answered_today} ${text("answered")}, ${queue.abandoned_today} ${text("abandoned")}`;
  return queue.service_level === null ? `– (${counts})` : `${Math.round(queue.service_level)} % (${counts})`;
}

// A call in progress: its state, and who coaches it how.
function call(current) {
  if (!current) return "";
  const coached = current.coaching ? ` · ${text(`coaching-${current.coaching}`)} (${current.coached_by})` : "";
  return text(`call-${current.state}`) + coached;
}

function form(template, action, fill) {
  const copy = document.getElementById(template).cloneNode(true);
  copy.removeAttribute("id");
  copy.hidden = false;
  copy.action = action;
  fill(copy);
  return copy;
}

function renderItems(board) {
  const rows = [];
  for (const queue of board.queues) {
    for (const item of queue.items) {
      const tr = row([queue.name, item.case_number ? `${item.case_number} — ${item.subject}` : item.channel,
        minutes(item.waited_seconds), item.priority]);
      const raise = form("priority-template", `/board/items/${item.item}/priority`, (copy) => {
        copy.querySelector("input[name=priority]").value = item.priority + 1;
      });
      tr.children[3].append(" ", raise);
      const move = form("move-template", `/board/items/${item.item}/move`, () => {});
      const cell = document.createElement("td");
      cell.append(move);
      tr.append(cell);
      const available = latest.agents.filter((agent) => agent.state === "available");
      const assignCell = document.createElement("td");
      if (available.length) {
        assignCell.append(form("assign-template", `/board/items/${item.item}/assign`, (copy) => {
          const select = copy.querySelector("select");
          for (const agent of available) {
            const option = document.createElement("option");
            option.value = agent.id;
            option.textContent = agent.name;
            select.append(option);
          }
        }));
      }
      tr.append(assignCell);
      rows.push(tr);
    }
  }
  document.getElementById("items-empty").hidden = rows.length > 0;
  document.getElementById("item-rows").replaceChildren(...rows);
}

// Forms post in the background and the board is read again.
root.addEventListener("submit", async (event) => {
  event.preventDefault();
  const target = event.target;
  const body = new URLSearchParams(new FormData(target, event.submitter));
  await fetch(target.action, { method: "POST", body });
  await refresh();
});

async function refresh() {
  const response = await fetch("/api/board", { headers: { Accept: "application/json" } });
  if (response.status === 401) {
    window.location.href = "/login";
    return;
  }
  if (response.ok) render(await response.json());
}

// Changes come in bursts (an offer changes an agent and a queue): one read per burst.
let pending = null;
followLive("/board/events", () => {
  if (pending === null) pending = setTimeout(() => { pending = null; refresh(); }, 200);
}, text);
