//! The console over a real desk, in process: the router on a given store, configured from the
//! database's queues; the voice flows on a loopback media engine with the demo IVR; the console
//! app with that desk; and the task that routes the console's work requests (web forms). Only the network and the SIP side are left out. Used by the
//! board's test and the workspace benchmark.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use loket_crm::clock::Clock;
use loket_crm::db::Db;
use loket_crm::records::documents::DiskStore;
use loket_crm::register::LocalRegister;
use loket_crm::testing::TestApp;
use loket_media::edge::{MediaConfig, MediaEngine};
use loket_routing::engine::{EngineOptions, Router};
use loket_routing::model::{QueueId, ServiceLevelTarget};
use loket_routing::store::QueueStore;
use tokio::task::JoinHandle;

use crate::desk::RouterDesk;
use crate::voice::{Parts, Prompts, Voice};

pub struct DeskApp<S: QueueStore> {
    pub app: TestApp,
    pub router: Arc<Router<S>>,
    /// Each queue's service-level target, as the router was configured.
    pub targets: HashMap<QueueId, ServiceLevelTarget>,
    tasks: Vec<JoinHandle<()>>,
    scratch: PathBuf,
}

impl<S: QueueStore> DeskApp<S> {
    pub async fn start(db: &Db, store: S) -> DeskApp<S> {
        let (queues, targets) = crate::work::configure_queues(&store, db).await.expect("the queues");
        let router = Arc::new(Router::start(Arc::new(store), EngineOptions::default()));
        let ivr = Arc::new(loket_ivr::Ivr::parse("ivr/demo.toml", loket_ivr::DEMO).expect("the demo IVR"));
        let prompts_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ivr/prompts");
        let prompts = Arc::new(Prompts::load(&prompts_dir, &ivr).expect("the demo prompts"));
        let scratch = crate::testing::unique_dir("loket-desk-app");
        let voice = Arc::new(Voice::new(Parts {
            db: db.clone(),
            ivr,
            prompts,
            media: MediaEngine::new(MediaConfig { bind: [127, 0, 0, 1].into(), ..MediaConfig::default() })
                .expect("media"),
            register: Arc::new(LocalRegister::demo()),
            work: Arc::clone(&router),
            queue_services: queues.into_iter().map(|queue| (queue.code, queue.service_code)).collect(),
            handle_time: Duration::from_secs(300),
            record_queues: Default::default(),
            recordings: scratch.join("recordings"),
            documents: Arc::new(DiskStore::new(scratch.join("documents"))),
        }));
        let (desk, mut tasks) = RouterDesk::start(Arc::clone(&router), voice, targets.clone());
        let app = TestApp::new(db.clone());
        app.state.set_desk(Arc::new(desk));
        let requests =
            crate::work::follow_requests(db.clone(), Clock::System, Arc::clone(&router), app.state.work_requests());
        tasks.push(tokio::spawn(requests));
        DeskApp { app, router, targets, tasks, scratch }
    }
}

impl<S: QueueStore> Drop for DeskApp<S> {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}
