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

function shownQueue(queue, chosen) {
  return (!chosen.get("service") || queue.service === chosen.get("service"))
    && (!chosen.get("line") || String(queue.line) === chosen.get("line"))
    && (!chosen.get("queue") || queue.code === chosen.get("queue"));
}

// The order of the agents' table: by name, by state, or longest in their state first.
const agentOrder = {
  name: (a, b) => a.name.localeCompare(b.name),
  state: (a, b) => a.state.localeCompare(b.state) || a.name.localeCompare(b.name),
  time: (a, b) => (b.state_seconds ?? -1) - (a.state_seconds ?? -1),
};

function render(everything) {
  latest = everything;
  const chosen = new FormData(filters);
  const agent = chosen.get("agent");
  const channel = (item) => !chosen.get("channel") || item.channel === chosen.get("channel");
  const board = {
    ...everything,
    queues: everything.queues.filter((queue) => shownQueue(queue, chosen)).map((queue) => ({
      ...queue,
      // Waiting items belong to no agent: an agent chosen shows only what they hold.
      items: agent ? [] : queue.items.filter(channel),
      held: queue.held.filter((item) => channel(item) && (!agent || String(item.holder_id) === agent)),
    })),
    agents: everything.agents
      .filter((one) => (!chosen.get("state") || one.state === chosen.get("state"))
        && (!agent || String(one.id) === agent))
      .sort(agentOrder[chosen.get("sort_agents")] ?? agentOrder.name),
  };
  document.getElementById("queue-rows").replaceChildren(
    ...board.queues.map((queue) =>
      row([queue.name, waiting(queue), queue.waiting ? minutes(queue.longest_wait_seconds) : "–", agentCounts(queue),
        serviceLevel(queue)], queue.waiting && !queue.agents.available ? "alert" : "")),
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
      const tr = row(["", state, agent.items, agent.capacity ? `${agent.capacity_used} / ${agent.capacity}` : "–",
        work(everything, agent), asking, call(agent.call)],
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
        tr.children[5].append(messages, form("reply-template", `/board/agents/${agent.id}/help-reply`, () => {}),
          " ", form("helped-template", `/board/agents/${agent.id}/helped`, () => {}));
      }
      // Coaching happens through the supervisor's own softphone.
      if (agent.call && board.softphone) {
        tr.children[6].append(" ", form("coach-template", `/board/items/${agent.call.item}/coach`, () => {}));
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

// How many wait, and of which channel.
function waiting(queue) {
  const channels = Object.entries(queue.waiting_by_channel).map(([channel, count]) => `${count} ${text(`channel-${channel}`)}`);
  return queue.waiting && channels.length ? `${queue.waiting} (${channels.join(", ")})` : String(queue.waiting);
}

// The queue's logged-in agents per state.
function agentCounts(queue) {
  const states = Object.entries(queue.agents).map(([state, count]) => `${count} ${text(`state-${state}`)}`);
  return states.length ? states.join(" · ") : "–";
}

// What the agent holds now, from the queues' lists: its case, or its channel.
function work(board, agent) {
  return board.queues.flatMap((queue) => queue.held)
    .filter((item) => item.holder_id === agent.id)
    .map((item) => item.case_number ?? text(`channel-${item.channel}`))
    .join(", ");
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

// The order of the work table: longest wait, highest priority, or by queue.
const itemOrder = {
  waited: (a, b) => b.item.waited_seconds - a.item.waited_seconds,
  priority: (a, b) => b.item.priority - a.item.priority || b.item.waited_seconds - a.item.waited_seconds,
  queue: (a, b) => a.queue.name.localeCompare(b.queue.name) || b.item.waited_seconds - a.item.waited_seconds,
};

function renderItems(board) {
  const entries = board.queues.flatMap((queue) => [
    ...queue.held.map((item) => ({ queue, item, held: true })),
    ...queue.items.map((item) => ({ queue, item, held: false })),
  ]);
  entries.sort(itemOrder[new FormData(filters).get("sort_items")] ?? itemOrder.waited);
  const available = latest.agents.filter((agent) => agent.state === "available");
  const rows = entries.map(({ queue, item, held }) => {
    const holder = held ? `${item.holder} (${text(item.offered ? "offered" : "in-hand")})` : "–";
    const tr = row([queue.name, item.case_number ? `${item.case_number} — ${item.subject}` : item.channel,
      holder, minutes(item.waited_seconds), item.priority]);
    tr.dataset.item = item.item;
    const priority = form("priority-template", `/board/items/${item.item}/priority`, (copy) => {
      copy.querySelector("input[name=priority]").value = item.priority;
    });
    tr.children[4].replaceChildren(priority);
    // Work in an agent's hands is taken back into a queue, its own by default.
    const move = held
      ? form("take-back-template", `/board/items/${item.item}/move`, (copy) => {
        copy.querySelector("select").value = queue.code;
      })
      : form("move-template", `/board/items/${item.item}/move`, () => {});
    const cell = document.createElement("td");
    cell.append(move);
    tr.append(cell);
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
    return tr;
  });
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
