//! Benchmark stand-in: the smallest rsipstack UAS that answers every INVITE with a 200 and a fixed
//! SDP answer, accepts the ACK and answers the BYE, written the way rsipstack intends to be used
//! (`Endpoint::serve`, the incoming-transaction loop, the dialog layer and its state channel).
//! `bench/sip-bench.sh` drives it with SIPp to measure what rsipstack's transaction and dialog
//! layers cost per call; see `sip/NOTES.md` for the figures.
//!
//! Usage: `bench_rsipstack_uas [127.0.0.1:25071] [current-thread]`; by default Tokio's multi-thread
//! runtime (one worker per core), with `current-thread` a single thread, to see what the hand-offs
//! between rsipstack's tasks cost across threads.

use std::net::SocketAddr;
use std::sync::Arc;

use rsipstack::EndpointBuilder;
use rsipstack::dialog::dialog::{Dialog, DialogState, DialogStateReceiver};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::{Header, Method, StatusCode, Uri};
use rsipstack::transaction::TransactionReceiver;
use rsipstack::transport::TransportLayer;
use rsipstack::transport::udp::UdpConnection;
use tokio_util::sync::CancellationToken;

const SDP_ANSWER: &str = "v=0\r\no=loket 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args().nth(1).as_deref().unwrap_or("127.0.0.1:25071").parse()?;
    let runtime = match std::env::args().nth(2).as_deref() {
        Some("current-thread") => tokio::runtime::Builder::new_current_thread().enable_all().build()?,
        _ => tokio::runtime::Builder::new_multi_thread().enable_all().build()?,
    };
    runtime.block_on(serve(addr))
}

async fn serve(addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let token = CancellationToken::new();
    let transport_layer = TransportLayer::new(token.clone());
    let connection = UdpConnection::create_connection(addr, None, Some(token.child_token())).await?;
    transport_layer.add_transport(connection.into());
    let endpoint =
        EndpointBuilder::new().with_cancel_token(token.clone()).with_transport_layer(transport_layer).build();

    let incoming = endpoint.incoming_transactions()?;
    let dialog_layer = Arc::new(DialogLayer::new(endpoint.inner.clone()));
    let (state_sender, state_receiver) = dialog_layer.new_dialog_state_channel();
    let contact = Uri::try_from(format!("sip:loket@{addr}").as_str())?;

    tokio::select! {
        () = endpoint.serve() => {}
        () = serve_transactions(dialog_layer.clone(), incoming, state_sender, contact) => {}
        () = follow_dialogs(dialog_layer, state_receiver) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    token.cancel();
    Ok(())
}

/// New INVITEs create a server dialog; requests inside a dialog go to it; anything else outside a
/// dialog gets 481 (RFC 3261 §12.2.2), except OPTIONS, which SIPp and monitors use as a ping.
async fn serve_transactions(
    dialog_layer: Arc<DialogLayer>,
    mut incoming: TransactionReceiver,
    state_sender: rsipstack::dialog::dialog::DialogStateSender,
    contact: Uri,
) {
    while let Some(mut tx) = incoming.recv().await {
        if let Some(Dialog::Invite(mut dialog)) = dialog_layer.match_dialog(&tx) {
            tokio::spawn(async move { dialog.handle(&mut tx).await });
            continue;
        }
        match tx.original.method {
            Method::Invite => {
                match dialog_layer.get_or_create_server_invite(&tx, state_sender.clone(), None, Some(contact.clone())) {
                    Ok(mut dialog) => {
                        tokio::spawn(async move { dialog.handle(&mut tx).await });
                    }
                    Err(_) => {
                        tokio::spawn(async move { tx.reply(StatusCode::CallTransactionDoesNotExist).await });
                    }
                }
            }
            Method::Ack => {}
            Method::Options => {
                tokio::spawn(async move { tx.reply(StatusCode::OK).await });
            }
            _ => {
                tokio::spawn(async move { tx.reply(StatusCode::CallTransactionDoesNotExist).await });
            }
        }
    }
}

/// Answers each call as soon as its dialog reports `Calling`, and forgets it once terminated.
async fn follow_dialogs(dialog_layer: Arc<DialogLayer>, mut state_receiver: DialogStateReceiver) {
    while let Some(state) = state_receiver.recv().await {
        match state {
            DialogState::Calling(id) => {
                if let Some(Dialog::Invite(dialog)) = dialog_layer.get_dialog(&id) {
                    let headers = vec![Header::ContentType("application/sdp".into())];
                    // A failed accept means the transaction is already gone (the caller cancelled).
                    let _ = dialog.accept(Some(headers), Some(SDP_ANSWER.as_bytes().to_vec()));
                }
            }
            DialogState::Terminated(id, _) => dialog_layer.remove_dialog(&id),
            _ => {}
        }
    }
}
