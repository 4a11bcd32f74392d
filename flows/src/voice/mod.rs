//! Voice: the calls the SIP service hands to the application (numbers with the target `ivr`).
//! Each call gets a task of its own: a media session answers the caller's offer, the number's IVR
//! flow runs on the caller's digits ([`loket_ivr::Session`]), and a call that ends in a queue
//! becomes a case draft and a work item before the caller starts waiting, so that an abandoned
//! call still leaves a case. While waiting the caller hears music, their place and the expected
//! wait, and a callback offer ([`loket_ivr::Waiting`]).
//!
//! [`Voice::run`] reads the service's events and passes each call's later events (digits by
//! INFO, the end) to that call's task. Not yet: an agent taking the call (the agent console),
//! transfers to a number, recording.

mod call;
mod case;
mod line;
mod prompts;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use loket_crm::db::Db;
use loket_crm::register::NationalRegister;
use loket_ivr::Ivr;
use loket_media::edge::MediaEngine;
use loket_sip::service::CallEvent;
use loket_sip::service::application::ApplicationEnds;
use tokio::sync::mpsc;

pub use prompts::{Prompts, PromptsError};

use crate::work::WorkItems;
use call::Incoming;
use line::Signal;

/// What the calls need, shared by their tasks.
pub struct Voice<W> {
    pub db: Db,
    pub ivr: Arc<Ivr>,
    pub prompts: Arc<Prompts>,
    pub media: MediaEngine,
    pub register: Arc<dyn NationalRegister>,
    pub work: Arc<W>,
    /// Queue code → service code, from the CRM's directory: the service of a case whose IVR set
    /// none.
    pub queue_services: HashMap<String, String>,
    /// The time an agent spends per caller ahead, for the expected wait that callers hear.
    pub handle_time: Duration,
}

impl<W: WorkItems> Voice<W> {
    /// Serves the calls until the SIP service stops.
    pub async fn run(self: Arc<Self>, mut ends: ApplicationEnds) {
        let mut calls: HashMap<_, mpsc::UnboundedSender<Signal>> = HashMap::new();
        while let Some(event) = ends.events.recv().await {
            match event {
                CallEvent::Incoming { call, dialled, caller, offer } => {
                    // Unbounded: a call's signals are a few digits and its end.
                    let (signals, receiver) = mpsc::unbounded_channel();
                    calls.insert(call, signals);
                    let incoming = Incoming { call, dialled, caller, offer };
                    tokio::spawn(Arc::clone(&self).handle(incoming, ends.commands.clone(), receiver));
                }
                CallEvent::Digit { call, digit } => {
                    if let Some(signals) = calls.get(&call) {
                        // A task that has finished no longer listens; nothing is lost.
                        let _ = signals.send(Signal::Digit(digit));
                    }
                }
                CallEvent::Ended { call } => {
                    if let Some(signals) = calls.remove(&call) {
                        let _ = signals.send(Signal::Ended);
                    }
                }
            }
        }
    }
}
