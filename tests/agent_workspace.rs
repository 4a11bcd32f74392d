//! The agent's workspace with real peers, the console driven as an HTTP client with the agent's
//! session (as `workspace.js` does it):
//! - a call: a SIPp citizen goes through the demo IVR with DTMF; the offer pops the case the IVR
//!   made with the contact the register gave; the agent accepts, loket rings the agent's SIPp desk
//!   phone and bridges the two calls; the agent hangs up from the console and both SIP sides get
//!   their BYE; the wrap-up closes the case and the agent is available again;
//! - the workspace's WebSocket cut during an offer;
//! - an e-mail: a message in a Dovecot mailbox becomes a case and an offer to the agent.
//!
//! SIPp and Dovecot are required: without them the tests fail and say how to install them.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use reqwest::cookie::{CookieStore, Jar};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

async fn workspace(client: &reqwest::Client, base: &str) -> Value {
    let response = client.get(format!("{base}/api/workspace")).send().await.expect("workspace state");
    assert_eq!(response.status(), 200);
    response.json().await.expect("workspace JSON")
}

/// Reads the workspace until `ready` holds, with a deadline.
async fn until(client: &reqwest::Client, base: &str, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + support::DEADLINE;
    loop {
        let state = workspace(client, base).await;
        if ready(&state) {
            return state;
        }
        assert!(Instant::now() < deadline, "{what} within the deadline; the workspace says {state:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The demo agent logged in, on the workspace: the client and the page's CSRF token.
async fn agent_session(loket: &support::Loket) -> (reqwest::Client, String) {
    session_of(loket, "agent").await
}

/// The demo user `username` logged in, on the workspace: the client and the page's CSRF token.
async fn session_of(loket: &support::Loket, username: &str) -> (reqwest::Client, String) {
    let client = support::client();
    support::login(&client, &loket.base, username, loket.password(username)).await;
    let page = client.get(format!("{}/workspace", loket.base)).send().await.expect("workspace");
    let csrf = support::csrf_of(&page.text().await.expect("page"));
    (client, csrf)
}

async fn post(client: &reqwest::Client, base: &str, path: &str, csrf: &str, fields: &[(&str, &str)]) {
    let mut form = vec![("csrf", csrf)];
    form.extend_from_slice(fields);
    let response = client.post(format!("{base}{path}")).form(&form).send().await.expect(path);
    assert_eq!(response.status(), 200, "{path} ends on the workspace: {:?}", response.text().await);
}

#[tokio::test]
async fn an_agent_takes_a_call_from_the_ivr_on_a_desk_phone() {
    // The population queue's calls are recorded.
    let media = "[media]\nrecord_queues = [\"population-nl-l1\"]\n";
    let (loket, _flows) = support::start_with_ivr(true, media, &[("LOKET_SIP_DIGEST_ALGORITHMS", "MD5")]);
    let base = loket.base.clone();

    let phone = support::agent_phone(&loket);

    // The agent goes available in the console.
    let (client, csrf) = agent_session(&loket).await;
    post(&client, &base, "/workspace/presence", &csrf, &[("presence", "available")]).await;
    until(&client, &base, "the agent available", |state| state["state"] == "available").await;

    // A citizen calls, picks NL, population, passport and keys in a national number.
    let caller = support::ivr_caller(&loket, "11285073003328#");

    let offered = until(&client, &base, "an offer", |state| !state["offer"].is_null()).await;
    let pop = &offered["offer"]["pop"];
    assert_eq!(pop["channel"], "voice", "{pop:#}");
    assert_eq!(pop["queue"], "population-nl-l1");
    let case = &pop["case"];
    assert_eq!(case["request_type"], "Paspoort", "{case:#}");
    assert_eq!(case["contact"]["name"], "Lotte Vermeulen");
    assert_eq!(case["contact"]["national_number"], "85.07.30-***.**", "the number is masked");
    assert_eq!(case["caller"], "+32470000001");
    assert!(case["ivr_path"].as_str().unwrap_or_default().contains("population-request 2"), "{case:#}");
    let item = pop["item"].as_u64().expect("an item id");
    let case_id = case["id"].as_i64().expect("a case id");

    post(&client, &base, &format!("/workspace/items/{item}/accept"), &csrf, &[]).await;
    let connected = until(&client, &base, "the call connected to the desk phone", |state| {
        state["work"][0]["call"]["state"] == "connected"
    })
    .await;
    assert_eq!(connected["state"], "busy");
    // A second and a half of conversation, for the recording.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    post(&client, &base, &format!("/workspace/items/{item}/call/hold"), &csrf, &[]).await;
    until(&client, &base, "the caller on hold", |state| state["work"][0]["call"]["state"] == "held").await;
    post(&client, &base, &format!("/workspace/items/{item}/call/resume"), &csrf, &[]).await;
    until(&client, &base, "the call resumed", |state| state["work"][0]["call"]["state"] == "connected").await;

    post(&client, &base, &format!("/workspace/items/{item}/call/hangup"), &csrf, &[]).await;
    support::finish_sipp("agent-phone.xml", phone).await;
    support::finish_sipp("ivr-caller-until-bye.xml", caller).await;

    let wrapping = until(&client, &base, "the wrap-up", |state| !state["wrap_up"].is_null()).await;
    assert_eq!(wrapping["state"], "after_work");
    assert_eq!(wrapping["wrap_up"]["item"].as_u64(), Some(item));
    let fields = [("disposition", "answered"), ("note", "Afspraak gemaakt voor het paspoort."), ("close", "1")];
    post(&client, &base, &format!("/workspace/items/{item}/wrap-up"), &csrf, &fields).await;
    until(&client, &base, "the agent available again", |state| state["state"] == "available").await;

    let case_page =
        client.get(format!("{base}/cases/{case_id}")).send().await.expect("case").text().await.expect("body");
    for expected in ["Afspraak gemaakt voor het paspoort.", "Vraag beantwoord"] {
        assert!(case_page.contains(expected), "the case shows {expected:?}");
    }
    // The call's recording is among the case's documents: a WAV with the citizen and the agent.
    let link = format!("href=\"/cases/{case_id}/documents/");
    let document =
        case_page.split(&link).nth(1).and_then(|rest| rest.split('"').next()).expect("a document on the case");
    let wav = client.get(format!("{base}/cases/{case_id}/documents/{document}")).send().await.expect("recording");
    let wav = wav.bytes().await.expect("recording bytes");
    assert!(wav.starts_with(b"RIFF") && &wav[8..12] == b"WAVE", "a WAV file");
    assert_eq!(u16::from_le_bytes([wav[22], wav[23]]), 2, "one channel per side");
    let frames: Vec<(i16, i16)> = wav[44..]
        .chunks_exact(4)
        .map(|frame| (i16::from_le_bytes([frame[0], frame[1]]), i16::from_le_bytes([frame[2], frame[3]])))
        .collect();
    assert!(frames.len() > 8_000, "more than a second: {} frames", frames.len());
    let loud = frames.iter().filter(|(citizen, _)| citizen.unsigned_abs() > 1_000).count();
    assert!(loud > frames.len() / 4, "the citizen is on the left channel ({loud} of {} frames)", frames.len());
    loket.stop();
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The workspace's WebSocket with the session of `jar`, as the page opens it.
async fn events(base: &str, jar: &Jar) -> Socket {
    let url: reqwest::Url = base.parse().expect("base URL");
    let cookie = jar.cookies(&url).expect("a session cookie");
    let mut request = format!("{}/workspace/events", base.replacen("http", "ws", 1)).into_client_request().unwrap();
    request.headers_mut().insert("cookie", cookie);
    let (socket, _) = tokio_tungstenite::connect_async(request).await.expect("the workspace's WebSocket");
    socket
}

/// The next text message, skipping pings, with a deadline.
async fn next_text(socket: &mut Socket) -> String {
    loop {
        let message =
            tokio::time::timeout(support::DEADLINE, socket.next()).await.expect("a message within the deadline");
        match message.expect("the socket is open").expect("a message") {
            Message::Text(text) => return text.to_string(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The page's connection drops while a call is offered: the offer is still there when it comes
/// back, because the page reads the whole state on every (re)connection and the state lives in
/// the router; the open socket then tells of each change (here, the caller hanging up).
#[tokio::test]
async fn a_socket_cut_during_an_offer_loses_nothing() {
    let (loket, _flows) = support::start_with_ivr(true, "", &[]);
    let base = loket.base.clone();
    let jar = Arc::new(Jar::default());
    let client = reqwest::Client::builder().cookie_provider(Arc::clone(&jar)).build().expect("client");
    support::login(&client, &base, "agent", loket.password("agent")).await;
    let page = client.get(format!("{base}/workspace")).send().await.expect("workspace").text().await.expect("page");
    let csrf = support::csrf_of(&page);
    post(&client, &base, "/workspace/presence", &csrf, &[("presence", "available")]).await;

    let mut first = events(&base, &jar).await;
    assert_eq!(next_text(&mut first).await, "changed", "a new connection reads the state at once");
    first.close(None).await.expect("close");
    drop(first);

    // The citizen hangs up by themself after about 20 s in the queue.
    let dir = support::TempDir::new();
    let args = ["-key", "digits", "11285073003328#", "-s", "+3225550100", "-p", "0", "-timeout", "90s"];
    let caller = support::sipp(&dir, "ivr-keys.xml", &args).arg(&loket.sip_udp).spawn().expect("sipp");
    let offered = until(&client, &base, "an offer made while no page listens", |state| !state["offer"].is_null()).await;
    assert_eq!(offered["offer"]["pop"]["case"]["contact"]["name"], "Lotte Vermeulen");

    let mut second = events(&base, &jar).await;
    assert_eq!(next_text(&mut second).await, "changed");
    let state = workspace(&client, &base).await;
    assert_eq!(state["offer"]["pop"]["item"], offered["offer"]["pop"]["item"], "the same offer after reconnecting");
    // Offers time out after the router's lease and come back; each change is told.
    assert_eq!(next_text(&mut second).await, "changed");
    support::finish_sipp("ivr-keys.xml", (caller, dir)).await;
    until(&client, &base, "the offer withdrawn after the caller hung up", |state| state["offer"].is_null()).await;
    loket.stop();
}

/// A citizen writes to the population mailbox (Dovecot over IMAP): `serve` reads it, the message
/// becomes a case and a work item in the Dutch population queue, and the available agent is
/// offered it with the case in the pop; accepted and wrapped up, the agent is available again.
#[tokio::test]
async fn an_agent_takes_an_email_from_a_mailbox() {
    let (dovecot, loket, _dir) = with_mailbox();
    let base = loket.base.clone();
    let (client, csrf) = agent_session(&loket).await;
    post(&client, &base, "/workspace/presence", &csrf, &[("presence", "available")]).await;

    dovecot.append("paspoort", &[citizen_mail(1)]).await;
    let offered = until(&client, &base, "the e-mail offered", |state| !state["offer"].is_null()).await;
    let pop = &offered["offer"]["pop"];
    assert_eq!(pop["channel"], "email", "{pop:#}");
    assert_eq!(pop["queue"], "population-nl-l1");
    assert_eq!(pop["case"]["subject"], "Attest van woonst");
    assert_eq!(pop["case"]["contact"]["emails"][0], "an.peeters@example.be");
    let item = pop["item"].as_u64().expect("an item id");

    post(&client, &base, &format!("/workspace/items/{item}/accept"), &csrf, &[]).await;
    let busy = until(&client, &base, "the e-mail in hand", |state| state["work"][0]["pop"]["item"] == item).await;
    assert!(busy["work"][0]["call"].is_null(), "an e-mail has no call");
    post(&client, &base, &format!("/workspace/items/{item}/wrap-up"), &csrf, &[("disposition", "answered")]).await;
    until(&client, &base, "the agent available again", |state| {
        state["state"] == "available" && state["work"] == serde_json::json!([])
    })
    .await;
    loket.stop();
}

/// Dovecot with the population mailbox `paspoort`, and `loket serve --demo` reading it.
fn with_mailbox() -> (loket_flows::testing::Dovecot, support::Loket, support::TempDir) {
    let dovecot = loket_flows::testing::Dovecot::start(&["paspoort"]);
    let mailbox = dovecot.mailbox("paspoort");
    let dir = support::TempDir::new();
    let mailboxes = dir.0.join("mailboxes.toml");
    let rules = format!(
        "[[mailboxes]]\nname = {:?}\naddress = {:?}\nhost = {:?}\nport = {}\nsecurity = \"plain\"\nusername = {:?}\n\
         password = {:?}\nservice = {:?}\ncase_type = {:?}\nqueue = {:?}\nskills = [\"population\"]\n",
        mailbox.name,
        mailbox.address,
        mailbox.host,
        mailbox.port,
        mailbox.username,
        mailbox.password,
        mailbox.service,
        mailbox.case_type,
        mailbox.queue,
    );
    std::fs::write(&mailboxes, rules).expect("mailboxes.toml");
    let config = format!("[mail]\nmailboxes = {:?}\n", mailboxes.display().to_string());
    let loket = support::start_with_config(&config, &[]);
    (dovecot, loket, dir)
}

/// A citizen's Dutch request for a residence certificate, the `n`th.
fn citizen_mail(n: usize) -> Vec<u8> {
    format!(
        "From: An Peeters <an.peeters@example.be>\r\nTo: paspoort@gemeente.example\r\nSubject: Attest van woonst\r\n\
         Message-ID: <workspace-{n}@example.be>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0100\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         Goedendag, ik heb graag een attest van woonst voor mijn zoon. Met dank, en tot ziens.\r\n"
    )
    .into_bytes()
}

/// The supervisor's board: an e-mail waits in the Dutch population queue while no agent is
/// available (the queue shows it, and none available); the agent goes available, is offered it,
/// and the board shows the queue empty and the agent receiving the offer.
#[tokio::test]
async fn the_supervisors_board_shows_queues_and_agents_live() {
    let (dovecot, loket, _dir) = with_mailbox();
    let base = loket.base.clone();
    let supervisor = support::client();
    support::login(&supervisor, &base, "supervisor", loket.password("supervisor")).await;
    let board = |client: &reqwest::Client| {
        let request = client.get(format!("{base}/api/board"));
        async move { request.send().await.expect("board").json::<Value>().await.expect("board JSON") }
    };
    let queue = |board: &Value| {
        board["queues"]
            .as_array()
            .and_then(|queues| queues.iter().find(|queue| queue["code"] == "population-nl-l1"))
            .cloned()
    };
    let agent = |board: &Value| {
        board["agents"]
            .as_array()
            .and_then(|agents| agents.iter().find(|agent| agent["name"] == "Jonas Peeters"))
            .cloned()
    };

    dovecot.append("paspoort", &[citizen_mail(2)]).await;
    let deadline = Instant::now() + support::DEADLINE;
    let waiting = loop {
        let state = board(&supervisor).await;
        if queue(&state).is_some_and(|queue| queue["waiting"] == 1) {
            break state;
        }
        assert!(Instant::now() < deadline, "the e-mail waiting on the board within the deadline: {state:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(queue(&waiting).expect("the queue")["agents"], serde_json::json!({}), "nobody is logged in");
    assert_eq!(queue(&waiting).expect("the queue")["waiting_by_channel"], serde_json::json!({"email": 1}));
    assert_eq!(agent(&waiting).expect("the agent")["state"], "offline");
    let listed = &queue(&waiting).expect("the queue")["items"][0];
    assert_eq!(listed["subject"], "Attest van woonst", "{listed:#}");
    let item = listed["item"].as_u64().expect("an item id");

    // The supervisor raises it and moves it to the French queue, and back.
    let page = supervisor.get(format!("{base}/board")).send().await.expect("board").text().await.expect("page");
    let csrf = support::csrf_of(&page);
    let form = |path: String, field: (&'static str, &'static str)| {
        supervisor.post(format!("{base}{path}")).form(&[("csrf", csrf.as_str()), field]).send()
    };
    assert_eq!(form(format!("/board/items/{item}/priority"), ("priority", "3")).await.expect("raise").status(), 200);
    assert_eq!(
        form(format!("/board/items/{item}/move"), ("queue", "population-fr-l1")).await.expect("move").status(),
        200
    );
    let moved = board(&supervisor).await;
    let french =
        moved["queues"].as_array().and_then(|queues| queues.iter().find(|queue| queue["code"] == "population-fr-l1"));
    assert_eq!(french.map(|queue| queue["items"][0]["priority"].clone()), Some(serde_json::json!(3)), "{moved:#}");
    assert_eq!(queue(&moved).expect("the queue")["waiting"], 0);
    assert_eq!(
        form(format!("/board/items/{item}/move"), ("queue", "population-nl-l1")).await.expect("move").status(),
        200
    );
    let refused = form(format!("/board/items/{item}/move"), ("queue", "no-such-queue")).await.expect("move");
    assert_eq!(refused.status(), 400, "an unknown queue is refused");

    let (client, agent_csrf) = agent_session(&loket).await;
    post(&client, &base, "/workspace/presence", &agent_csrf, &[("presence", "available")]).await;
    let deadline = Instant::now() + support::DEADLINE;
    loop {
        let state = board(&supervisor).await;
        let offered = agent(&state).is_some_and(|agent| agent["state"] == "offered" && agent["items"] == 1);
        if offered && queue(&state).is_some_and(|queue| queue["waiting"] == 0) {
            break;
        }
        assert!(Instant::now() < deadline, "the offer on the board within the deadline: {state:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A colleague comes in (nothing waits for her); the supervisor hands her the item, then sets
    // Jonas away for a break.
    let (colleague, colleague_csrf) = session_of(&loket, "agent2").await;
    post(&colleague, &base, "/workspace/presence", &colleague_csrf, &[("presence", "available")]).await;
    let ids = board(&supervisor).await;
    let id_of = |name: &str| {
        ids["agents"].as_array().and_then(|agents| agents.iter().find(|agent| agent["name"] == name)).expect(name)["id"]
            .to_string()
    };
    let (jonas, camille, nadia) = (id_of("Jonas Peeters"), id_of("Camille Dubois"), id_of("Nadia El Amrani"));
    let assign = |agent: String| {
        supervisor
            .post(format!("{base}/board/items/{item}/assign"))
            .form(&[("csrf", csrf.as_str()), ("agent", agent.as_str())])
            .send()
    };
    assert_eq!(assign(camille.clone()).await.expect("assign").status(), 200);
    let handed = until(&colleague, &base, "the item offered to the colleague", |state| !state["offer"].is_null()).await;
    assert_eq!(handed["offer"]["pop"]["item"], item);
    assert_eq!(workspace(&client, &base).await["state"], "available", "Jonas's offer was withdrawn");
    assert_eq!(assign(nadia).await.expect("assign").status(), 400, "an agent who is not logged in takes nothing");

    // She takes it: the queue's figures of today count it, by the queue's formula.
    post(&colleague, &base, &format!("/workspace/items/{item}/accept"), &colleague_csrf, &[]).await;
    let deadline = Instant::now() + support::DEADLINE;
    let figures = loop {
        let state = board(&supervisor).await;
        let figures = queue(&state).expect("the queue");
        if figures["answered_today"] == 1 {
            break figures;
        }
        assert!(Instant::now() < deadline, "the answer in today's figures within the deadline: {figures:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(figures["service_level"], 100.0, "answered within 20 s: {figures:#}");
    assert_eq!(
        (&figures["service_level_formula"], &figures["service_level_seconds"]),
        (&"answered_within".into(), &20.into())
    );
    assert_eq!(figures["abandoned_today"], 0);

    // She asks for help about it; the supervisor answers and lowers her flag; the case keeps it.
    let held = workspace(&colleague, &base).await;
    let case_id = held["work"][0]["pop"]["case"]["id"].as_i64().expect("the e-mail's case");
    let ask = [("ask", "1"), ("message", "Welk attest heeft de burger nodig")];
    post(&colleague, &base, "/workspace/help", &colleague_csrf, &ask).await;
    let answer = supervisor
        .post(format!("{base}/board/agents/{camille}/help-reply"))
        .form(&[("csrf", csrf.as_str()), ("text", "Het attest van woonst")])
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 200);
    let helped = workspace(&colleague, &base).await;
    let messages = helped["help"]["messages"].to_string();
    assert!(messages.contains("Welk attest") && messages.contains("Het attest van woonst"), "{helped:#}");
    let lowered = supervisor
        .post(format!("{base}/board/agents/{camille}/helped"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("helped");
    assert_eq!(lowered.status(), 200);
    assert!(workspace(&colleague, &base).await["help"].is_null());
    let case_page =
        supervisor.get(format!("{base}/cases/{case_id}")).send().await.expect("case").text().await.expect("page");
    for step in [
        "vroeg een supervisor om hulp",
        "Welk attest heeft de burger nodig",
        "beantwoordde de hulpvraag",
        "Het attest van woonst",
        "sloot de hulpvraag af",
    ] {
        assert!(case_page.contains(step), "{step:?} on the case's timeline");
    }
    let away = supervisor
        .post(format!("{base}/board/agents/{jonas}/presence"))
        .form(&[("csrf", csrf.as_str()), ("presence", "away"), ("reason", "break")])
        .send()
        .await
        .expect("away");
    assert_eq!(away.status(), 200);
    let state = until(&client, &base, "Jonas away", |state| state["state"] == "away").await;
    assert_eq!(state["away_reason"], "break");
    // The board says since when, from the event log the desk follows.
    let deadline = Instant::now() + support::DEADLINE;
    loop {
        let state = board(&supervisor).await;
        let jonas = agent(&state).expect("Jonas on the board");
        if jonas["state"] == "away" && jonas["state_seconds"].is_u64() {
            break;
        }
        assert!(Instant::now() < deadline, "the time in state on the board within the deadline: {jonas:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Jonas's queues and skills change live: the router's profile of him has the taxes queue.
    let page = supervisor.get(format!("{base}/board/agents/{jonas}")).send().await.expect("page");
    assert!(page.text().await.expect("page").contains("Jonas Peeters"));
    let routing = |fields: &[(&str, &str)]| {
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        supervisor.post(format!("{base}/board/agents/{jonas}/routing")).form(&form).send()
    };
    let fields = [("queue", "population-nl-l1"), ("queue", "taxes-nl-l1"), ("skill:nl", "5"), ("skill:taxes", "3")];
    assert_eq!(routing(&fields).await.expect("routing").status(), 200);
    let state = workspace(&client, &base).await;
    let queues: Vec<&str> =
        state["queues"].as_array().expect("queues").iter().filter_map(|q| q["code"].as_str()).collect();
    assert_eq!(queues, ["population-nl-l1", "taxes-nl-l1"], "the router has the new queues at once");
    let refused = routing(&[("queue", "no-such-queue")]).await.expect("routing");
    assert_eq!(refused.status(), 400, "an unknown queue is refused");
    let refused = routing(&[("skill:nl", "11")]).await.expect("routing");
    assert_eq!(refused.status(), 400, "a level above 10 is refused");
    let state = workspace(&client, &base).await;
    assert_eq!(state["queues"].as_array().map(Vec::len), Some(2), "nothing changed: {state:#}");

    let status = client.get(format!("{base}/api/board")).send().await.expect("board").status();
    assert_eq!(status, 403, "agents do not see the board");
    loket.stop();
}

/// A blind transfer: the agent sends the connected caller to the social affairs queue; loket
/// hangs up the agent's phone, the agent goes to wrap-up, and the caller waits again, now in
/// that queue, as the supervisor's board shows.
#[tokio::test]
async fn a_transferred_call_waits_in_its_new_queue() {
    let (loket, _flows) = support::start_with_ivr(true, "", &[("LOKET_SIP_DIGEST_ALGORITHMS", "MD5")]);
    let base = loket.base.clone();
    let phone = support::agent_phone(&loket);
    let (client, csrf) = agent_session(&loket).await;
    post(&client, &base, "/workspace/presence", &csrf, &[("presence", "available")]).await;
    let (mut caller, _caller_dir) = support::ivr_caller(&loket, "11285073003328#");
    let offered = until(&client, &base, "an offer", |state| !state["offer"].is_null()).await;
    let item = offered["offer"]["pop"]["item"].as_u64().expect("an item id");
    post(&client, &base, &format!("/workspace/items/{item}/accept"), &csrf, &[]).await;
    until(&client, &base, "the call connected", |state| state["work"][0]["call"]["state"] == "connected").await;

    let to = [("queue", "social_affairs-nl-l1")];
    post(&client, &base, &format!("/workspace/items/{item}/transfer"), &csrf, &to).await;
    support::finish_sipp("agent-phone.xml", phone).await;
    let wrapping = until(&client, &base, "the agent in wrap-up", |state| state["state"] == "after_work").await;
    assert_eq!(wrapping["wrap_up"]["item"].as_u64(), Some(item));

    let supervisor = support::client();
    support::login(&supervisor, &base, "supervisor", loket.password("supervisor")).await;
    let deadline = Instant::now() + support::DEADLINE;
    loop {
        let board: Value =
            supervisor.get(format!("{base}/api/board")).send().await.expect("board").json().await.expect("json");
        let waiting = board["queues"]
            .as_array()
            .and_then(|queues| queues.iter().find(|queue| queue["code"] == "social_affairs-nl-l1"))
            .is_some_and(|queue| queue["waiting"] == 1);
        if waiting {
            break;
        }
        assert!(Instant::now() < deadline, "the caller waiting in social affairs within the deadline: {board:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = caller.kill();
    loket.stop();
}

/// A caller who skips identification, whose number two citizens share: the pop lists both, and
/// one click links the one the agent recognises to the case.
#[tokio::test]
async fn the_agent_links_an_unidentified_caller_to_a_candidate() {
    let (loket, _flows) = support::start_with_ivr(true, "", &[]);
    let base = loket.base.clone();
    // The session's CSRF token serves every form of the session, the contact form too.
    let (client, csrf) = agent_session(&loket).await;
    for (first, last) in [("Mia", "Jacobs"), ("Tom", "Jacobs")] {
        let fields = [
            ("csrf", csrf.as_str()),
            ("first_name", first),
            ("last_name", last),
            ("language", "nl"),
            ("phones", "+32470000001"),
            ("confirm_duplicate", "yes"),
        ];
        let created = client.post(format!("{base}/contacts")).form(&fields).send().await.expect("new contact");
        assert_eq!(created.status(), 200);
    }
    post(&client, &base, "/workspace/presence", &csrf, &[("presence", "available")]).await;
    let (mut caller, _caller_dir) = support::ivr_caller(&loket, "111#");

    let offered = until(&client, &base, "an offer", |state| !state["offer"].is_null()).await;
    let case = &offered["offer"]["pop"]["case"];
    assert!(case["contact"].is_null(), "{case:#}");
    let names: Vec<&str> =
        case["candidates"].as_array().expect("candidates").iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["Mia Jacobs", "Tom Jacobs"]);
    let tom = case["candidates"][1]["id"].as_i64().expect("an id").to_string();
    let item = offered["offer"]["pop"]["item"].as_u64().expect("an item id");
    post(&client, &base, &format!("/workspace/items/{item}/link"), &csrf, &[("contact_id", &tom)]).await;
    let linked =
        until(&client, &base, "the contact linked", |state| !state["offer"]["pop"]["case"]["contact"].is_null()).await;
    assert_eq!(linked["offer"]["pop"]["case"]["contact"]["name"], "Tom Jacobs");
    let again = client
        .post(format!("{base}/workspace/items/{item}/link"))
        .form(&[("csrf", csrf.as_str()), ("contact_id", tom.as_str())])
        .send()
        .await
        .expect("link again");
    assert_eq!(again.status(), 400, "a case with a contact keeps it");
    let _ = caller.kill();
    loket.stop();
}

/// An agent who is away sees what waits in their queues and takes an e-mail from the list.
#[tokio::test]
async fn an_away_agent_claims_waiting_work_from_their_queue() {
    let (dovecot, loket, _dir) = with_mailbox();
    let base = loket.base.clone();
    let (client, csrf) = agent_session(&loket).await;
    post(&client, &base, "/workspace/presence", &csrf, &[("presence", "away"), ("reason", "back_office")]).await;
    dovecot.append("paspoort", &[citizen_mail(3)]).await;
    let listed = until(&client, &base, "the e-mail in the agent's queue list", |state| {
        state["queues"].as_array().is_some_and(|queues| {
            queues.iter().any(|queue| {
                queue["code"] == "population-nl-l1" && queue["waiting"][0]["subject"] == "Attest van woonst"
            })
        })
    })
    .await;
    assert!(listed["offer"].is_null(), "nothing is offered to an agent who is away");
    let queue = listed["queues"].as_array().unwrap().iter().find(|queue| queue["code"] == "population-nl-l1").unwrap();
    let item = queue["waiting"][0]["item"].as_u64().expect("an item id");
    post(&client, &base, &format!("/workspace/items/{item}/claim"), &csrf, &[]).await;
    until(&client, &base, "the claimed e-mail in hand", |state| state["work"][0]["pop"]["item"] == item).await;
    loket.stop();
}

/// The softphone's signalling on the workspace's socket refuses what it cannot use with a reason,
/// and the socket goes on: a message that is no JSON, and an offer that is no SDP, leave no
/// softphone behind.
#[tokio::test]
async fn bad_softphone_signalling_is_refused_with_a_reason() {
    let (loket, _flows) = support::start_with_ivr(true, "", &[]);
    let base = loket.base.clone();
    let jar = Arc::new(Jar::default());
    let client = reqwest::Client::builder().cookie_provider(Arc::clone(&jar)).build().expect("client");
    support::login(&client, &base, "agent", loket.password("agent")).await;
    let mut socket = events(&base, &jar).await;
    assert_eq!(next_text(&mut socket).await, "changed");

    socket.send(Message::text("hello")).await.expect("send");
    let reply: Value = serde_json::from_str(&next_text(&mut socket).await).expect("a JSON reply");
    assert_eq!(reply["type"], "softphone-error");
    assert!(reply["message"].as_str().unwrap_or_default().contains("unreadable"), "{reply}");

    let offer = serde_json::json!({"type": "softphone-offer", "sdp": "v=0\r\nno session here\r\n"});
    socket.send(Message::text(offer.to_string())).await.expect("send");
    let reply: Value = serde_json::from_str(&next_text(&mut socket).await).expect("a JSON reply");
    assert_eq!(reply["type"], "softphone-error", "{reply}");
    assert!(reply["message"].as_str().unwrap_or_default().contains("offer"), "{reply}");
    assert_eq!(workspace(&client, &base).await["softphone"], false);
    loket.stop();
}

/// The case of a call cannot be written (here: the IVR names a service the directory does not
/// have): the caller still waits and reaches an agent, whose pop says the call has no case yet,
/// rather than being hung up on.
#[tokio::test]
async fn a_caller_whose_case_cannot_be_written_still_reaches_an_agent() {
    let flows = support::demo_flows(true)
        .replace(
            r#"passport = { type = "set", attributes = { request_type = "passport" }"#,
            r#"passport = { type = "set", attributes = { request_type = "passport", service = "no-such-service" }"#,
        )
        .replace(
            r#"queue = { type = "queue", queue = "{service}-{language}-l1", skills = { "{service}" = 1 } }"#,
            r#"queue = { type = "queue", queue = "population-nl-l1", skills = { population = 1 } }"#,
        );
    assert!(flows.contains("no-such-service") && flows.contains(r#"queue = "population-nl-l1""#), "the flows changed");
    let (loket, _flows) = support::start_with_flows(&flows, "", &[("LOKET_SIP_DIGEST_ALGORITHMS", "MD5")]);
    let base = loket.base.clone();
    let phone = support::agent_phone(&loket);
    let (client, csrf) = agent_session(&loket).await;
    post(&client, &base, "/workspace/presence", &csrf, &[("presence", "available")]).await;
    until(&client, &base, "the agent available", |state| state["state"] == "available").await;

    let caller = support::ivr_caller(&loket, "11285073003328#");
    let offered = until(&client, &base, "an offer", |state| !state["offer"].is_null()).await;
    let pop = &offered["offer"]["pop"];
    assert_eq!((&pop["channel"], &pop["queue"]), (&"voice".into(), &"population-nl-l1".into()), "{pop:#}");
    assert!(pop["case"].is_null(), "no case could be written: {pop:#}");
    let item = pop["item"].as_u64().expect("an item id");
    post(&client, &base, &format!("/workspace/items/{item}/accept"), &csrf, &[]).await;
    until(&client, &base, "the call connected", |state| state["work"][0]["call"]["state"] == "connected").await;
    post(&client, &base, &format!("/workspace/items/{item}/call/hangup"), &csrf, &[]).await;
    support::finish_sipp("agent-phone.xml", phone).await;
    support::finish_sipp("ivr-caller-until-bye.xml", caller).await;
    loket.stop();
}

/// A blind transfer to another agent: the first agent, on a call, sends the caller to a colleague
/// who is available (listed for the transfer); the first goes to wrap-up, the colleague is offered
/// the same item with its case, accepts, and their own desk phone is bridged to the caller.
#[tokio::test]
async fn a_call_is_transferred_to_another_agent() {
    let (loket, _flows) = support::start_with_ivr(true, "", &[("LOKET_SIP_DIGEST_ALGORITHMS", "MD5")]);
    let base = loket.base.clone();
    let first_phone = support::agent_phone(&loket);
    let second_phone = support::phone_of(&loket, "agent2");
    let (first, first_csrf) = agent_session(&loket).await;
    post(&first, &base, "/workspace/presence", &first_csrf, &[("presence", "available")]).await;
    until(&first, &base, "the agent available", |state| state["state"] == "available").await;
    let caller = support::ivr_caller(&loket, "11285073003328#");
    let offered = until(&first, &base, "an offer", |state| !state["offer"].is_null()).await;
    let item = offered["offer"]["pop"]["item"].as_u64().expect("an item id");
    let case = offered["offer"]["pop"]["case"]["id"].clone();
    post(&first, &base, &format!("/workspace/items/{item}/accept"), &first_csrf, &[]).await;
    until(&first, &base, "the call connected", |state| state["work"][0]["call"]["state"] == "connected").await;

    // The colleague (who works the same queue) comes in during the call.
    let (second, second_csrf) = session_of(&loket, "agent2").await;
    post(&second, &base, "/workspace/presence", &second_csrf, &[("presence", "available")]).await;
    let talking = until(&first, &base, "the colleague listed for a transfer", |state| {
        state["transfer_agents"].as_array().is_some_and(|agents| agents.iter().any(|a| a["name"] == "Camille Dubois"))
    })
    .await;
    let colleague = talking["transfer_agents"]
        .as_array()
        .and_then(|agents| agents.iter().find(|agent| agent["name"] == "Camille Dubois"))
        .expect("listed");
    let colleague = colleague["id"].to_string();

    post(&first, &base, &format!("/workspace/items/{item}/transfer"), &first_csrf, &[("agent", &colleague)]).await;
    until(&first, &base, "the first agent in wrap-up", |state| state["state"] == "after_work").await;
    let offered = until(&second, &base, "the colleague's offer", |state| !state["offer"].is_null()).await;
    assert_eq!(offered["offer"]["pop"]["item"], item, "the same item");
    assert_eq!(offered["offer"]["pop"]["case"]["id"], case, "with its case");
    post(&second, &base, &format!("/workspace/items/{item}/accept"), &second_csrf, &[]).await;
    until(&second, &base, "the colleague connected", |state| state["work"][0]["call"]["state"] == "connected").await;
    post(&second, &base, &format!("/workspace/items/{item}/call/hangup"), &second_csrf, &[]).await;
    support::finish_sipp("agent-phone.xml", first_phone).await;
    support::finish_sipp("agent-phone.xml", second_phone).await;
    support::finish_sipp("ivr-caller-until-bye.xml", caller).await;
    loket.stop();
}
