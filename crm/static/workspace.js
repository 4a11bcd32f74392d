// The agent's workspace: the state comes whole from /api/workspace each time the WebSocket says
// it changed, and on every (re)connection, so nothing shown can be older than the router's view.
// Text from the server is set with textContent only.
"use strict";

const root = document.getElementById("workspace");
const csrf = root.querySelector("input[name=csrf]").value;
const text = (key) => root.querySelector(`[data-text="${key}"]`)?.textContent ?? key;
let countdown = null;

function element(tag, content, className) {
  const node = document.createElement(tag);
  if (content !== undefined) node.textContent = content;
  if (className) node.className = className;
  return node;
}

// A form that posts `fields` and the CSRF token to `action`, with one button.
function postForm(action, fields, label, className) {
  const form = element("form", undefined, className);
  form.method = "post";
  form.action = action;
  for (const [name, value] of [["csrf", csrf], ...fields]) {
    const input = element("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    form.append(input);
  }
  const button = element("button", label);
  button.type = "submit";
  form.append(button);
  return form;
}

function row(list, label, value) {
  if (value === null || value === undefined || value === "" || (Array.isArray(value) && value.length === 0)) return;
  list.append(element("dt", label), element("dd", Array.isArray(value) ? value.join(", ") : String(value)));
}

// The screen pop: the case, the citizen and their history, the way through the IVR.
function renderPop(pop) {
  const box = document.createDocumentFragment();
  const facts = element("dl", undefined, "facts");
  row(facts, text("request"), pop.case ? `${pop.case.service} · ${pop.case.request_type}` : text(`channel-${pop.channel}`));
  row(facts, text("queue"), pop.queue);
  row(facts, text("callback"), pop.callback);
  row(facts, text("waited"), `${pop.waited_seconds} s`);
  if (pop.case) {
    row(facts, text("caller"), pop.case.caller);
    row(facts, text("ivr-path"), pop.case.ivr_path);
  }
  box.append(facts);
  if (!pop.case) return box;
  const link = element("a", `${text("open-case")} ${pop.case.number} — ${pop.case.subject}`);
  link.href = `/cases/${pop.case.id}`;
  const caseLine = element("p");
  caseLine.append(link);
  box.append(caseLine);
  const contact = pop.case.contact;
  box.append(element("h3", contact ? `${text("contact")}: ${contact.name}` : text("unidentified"), "contact-name"));
  if (!contact && pop.case.candidates.length) {
    const list = element("ul", undefined, "candidates");
    for (const candidate of pop.case.candidates) {
      const item = element("li", `${candidate.name} `);
      item.append(postForm(`/workspace/items/${pop.item}/link`, [["contact_id", candidate.id]], text("link"), "inline"));
      list.append(item);
    }
    box.append(element("p", text("candidates")), list);
  }
  if (contact) {
    const details = element("dl", undefined, "facts");
    row(details, text("national-number"), contact.national_number);
    row(details, text("language"), contact.language);
    if (contact.phones.length) details.append(element("dt", text("phones")), phoneList(contact.phones, pop.case.id));
    row(details, text("emails"), contact.emails);
    row(details, text("address"), contact.address);
    box.append(details);
  }
  if (pop.case.recent_cases.length) {
    box.append(element("h4", text("recent-cases")));
    const list = element("ul");
    for (const recent of pop.case.recent_cases) {
      const item = element("li");
      const a = element("a", `${recent.number} — ${recent.subject} (${recent.status})`);
      a.href = `/cases/${recent.id}`;
      item.append(a);
      list.append(item);
    }
    box.append(list);
  }
  return box;
}

// The contact's numbers, each with a button that calls it from the softphone, for the case.
function phoneList(phones, caseId) {
  const list = element("dd", undefined, "phones");
  for (const phone of phones) {
    const form = postForm("/workspace/dial", [["number", phone], ["case_id", caseId]], text("dial-call"), "inline dial-phone");
    form.prepend(`${phone} `);
    list.append(form);
  }
  return list;
}

// The call the agent placed, and the keypad while the agent is in a call.
function renderDialled(state) {
  const dialled = state.dialled;
  document.getElementById("dial-form").querySelector("button").disabled = Boolean(dialled);
  document.getElementById("dial-phone-first").hidden = state.softphone;
  document.getElementById("dialled").hidden = !dialled;
  if (dialled) {
    document.getElementById("dialled-number").textContent = dialled.number;
    document.getElementById("dialled-state").textContent = text(`call-${dialled.call.state}`);
    const call = dialled.call.state;
    root.querySelector(".dial-hold").hidden = call !== "connected";
    root.querySelector(".dial-resume").hidden = call !== "held";
  }
  const talking = (call) => call && ["connected", "held", "consulting"].includes(call.state);
  document.getElementById("keypad").hidden = !(talking(dialled?.call) || state.work.some((held) => talking(held.call)));
}

// While a call is in hand, the colleagues it can go to come and go without this agent's desk
// changing: their list is read again every few seconds.
let colleaguesTimer = null;

function render(state) {
  renderDialled(state);
  renderConsultation(state.consultation);
  clearTimeout(colleaguesTimer);
  if (state.work.some((held) => ["connected", "held"].includes(held.call?.state))) {
    colleaguesTimer = setTimeout(refresh, 5000);
  }
  document.getElementById("agent-state").textContent = text(`state-${state.state}`);
  document.getElementById("help-form").hidden = Boolean(state.help);
  document.getElementById("help-thread").hidden = !state.help;
  document.getElementById("help-messages").replaceChildren(
    ...(state.help?.messages ?? []).map((message) =>
      element("li", `${message.author}: ${message.text}`, message.supervisor ? "from-supervisor" : "")),
  );
  const offer = document.getElementById("offer");
  clearInterval(countdown);
  offer.hidden = !state.offer;
  if (state.offer) {
    const item = state.offer.pop.item;
    document.getElementById("offer-pop").replaceChildren(renderPop(state.offer.pop));
    document.getElementById("accept-form").action = `/workspace/items/${item}/accept`;
    document.getElementById("decline-form").action = `/workspace/items/${item}/decline`;
    const tick = () => {
      const left = Math.max(0, Math.round((state.offer.lease_until - Date.now()) / 1000));
      document.getElementById("offer-countdown").textContent = `${left} ${text("seconds-left")}`;
    };
    tick();
    countdown = setInterval(tick, 1000);
    if (!offer.contains(document.activeElement)) offer.querySelector("#accept-form button").focus();
  }
  const work = document.getElementById("work-list");
  work.replaceChildren();
  document.getElementById("work-empty").hidden = state.work.length > 0;
  for (const held of state.work) {
    const card = element("article", undefined, "work-item");
    const heading = element("h3", text(`channel-${held.pop.channel}`));
    if (held.call) heading.append(" · ", element("span", text(`call-${held.call.state}`), "call-state"));
    card.append(heading, renderPop(held.pop));
    const callState = held.call ? held.call.state : null;
    if (callState === "connected") card.append(callButton(held.pop.item, "hold", "hold", "p"));
    if (callState === "connected" || callState === "held") {
      const transfer = document.getElementById("transfer-template").cloneNode(true);
      transfer.removeAttribute("id");
      transfer.hidden = false;
      transfer.action = `/workspace/items/${held.pop.item}/transfer`;
      card.append(transfer);
      const item = held.pop.item;
      if (state.transfer_agents.length) {
        card.append(agentForm(`/workspace/items/${item}/transfer`, state.transfer_agents, "transfer-to-agent", "transfer", "call-transfer-agent"));
      }
      const consult = document.getElementById("consult-template").cloneNode(true);
      consult.removeAttribute("id");
      consult.hidden = false;
      consult.action = `/workspace/items/${item}/consult`;
      card.append(consult);
      if (state.transfer_agents.length) {
        card.append(agentForm(`/workspace/items/${item}/consult`, state.transfer_agents, "consult-agent", "consult", "call-consult-agent"));
      }
    }
    if (callState === "consulting") {
      const step = (name) => postForm(`/workspace/items/${held.pop.item}/consult/${name}`, [], text(`consult-${name}`), `inline consult-${name}`);
      if (held.call.answered) card.append(step("complete"));
      card.append(step("cancel"));
    }
    if (callState === "held") card.append(callButton(held.pop.item, "resume", "resume", "p"));
    if (callState && callState !== "ended") card.append(callButton(held.pop.item, "hangup", "hang-up", "h"));
    work.append(card);
  }
  const lists = document.getElementById("queue-lists");
  lists.replaceChildren();
  for (const queue of state.queues) {
    lists.append(element("h3", queue.code));
    if (!queue.waiting.length) lists.append(element("p", text("none-waiting")));
    const list = element("ul");
    for (const waiting of queue.waiting) {
      const line = element("li", `${text(`channel-${waiting.channel}`)} · ${waiting.subject ?? ""} · ${waiting.waited_seconds} s `);
      line.append(callButton(waiting.item, "claim", "claim", ""));
      list.append(line);
    }
    lists.append(list);
  }
  const wrapUp = document.getElementById("wrap-up");
  wrapUp.hidden = !state.wrap_up;
  if (state.wrap_up) {
    document.getElementById("wrap-up-pop").replaceChildren(renderPop(state.wrap_up));
    document.getElementById("wrap-up-form").action = `/workspace/items/${state.wrap_up.item}/wrap-up`;
  }
}

// The consultation a colleague asks of this agent: it rings until answered, then goes on until
// either side hangs up or the colleague completes the transfer (the call then shows in hand).
function renderConsultation(consultation) {
  const section = document.getElementById("consultation");
  section.hidden = !consultation;
  if (!consultation) return;
  const intro = text(consultation.answered ? "consultation-talking" : "consultation-rings");
  document.getElementById("consultation-from").textContent = `${intro} ${consultation.from}`;
  document.getElementById("consultation-pop").replaceChildren(renderPop(consultation.pop));
  // A desk phone rings: it is answered there.
  document.getElementById("consultation-answer").hidden = consultation.answered || consultation.on_phone;
  document.querySelector("#consultation-hangup button").textContent = text(consultation.answered ? "hang-up" : "decline");
  if (!consultation.answered && !consultation.on_phone && !section.contains(document.activeElement)) {
    section.querySelector("#consultation-answer button").focus();
  }
}

// A form that sends the call to one of the agents available now: a blind transfer, or a
// consultation.
function agentForm(action, agents, labelKey, buttonKey, className) {
  const form = element("form", undefined, `inline ${className}`);
  form.method = "post";
  form.action = action;
  const token = element("input");
  token.type = "hidden";
  token.name = "csrf";
  token.value = csrf;
  const label = element("label", `${text(labelKey)} `);
  const select = element("select");
  select.name = "agent";
  for (const agent of agents) {
    const option = element("option", agent.name);
    option.value = agent.id;
    select.append(option);
  }
  label.append(select);
  const button = element("button", text(buttonKey));
  button.type = "submit";
  form.append(token, label, button);
  return form;
}

// A form with one button about an item, posted like the others: call controls and claims.
function callButton(item, action, label, key) {
  const path = action === "claim" ? `/workspace/items/${item}/claim` : `/workspace/items/${item}/call/${action}`;
  const form = postForm(path, [], text(label), `inline call-${action}`);
  form.querySelector("button").accessKey = key;
  return form;
}

async function refresh() {
  const response = await fetch("/api/workspace", { headers: { Accept: "application/json" } });
  if (response.status === 401) {
    window.location.href = "/login";
    return;
  }
  if (response.ok) render(await response.json());
}

// Forms post in the background and the state is read again; without this script they still
// work as plain forms (the server redirects back here).
root.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const body = new URLSearchParams(new FormData(form, event.submitter));
  const response = await fetch(form.action, { method: "POST", body });
  const error = document.getElementById("workspace-error");
  error.hidden = response.ok;
  error.textContent = response.ok ? "" : `${text("request-failed")} (${response.status})`;
  await refresh();
});

followLive("/workspace/events", refresh, text);
