//! A `redis-server` of a test's own, shared by the routing and SIP tests (included by
//! path, so that no crate depends on another's tests).

use std::time::{Duration, Instant};

/// A `redis-server` of the test's own on a free loopback port, with no persistence, so that a test
/// can stop and start it. Stopped on drop.
pub struct PrivateRedis {
    port: u16,
    server: Option<std::process::Child>,
}

impl PrivateRedis {
    pub fn start() -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let mut redis = PrivateRedis { port, server: None };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (empty) and waits until it answers, for at most 5 s.
    pub fn restart(&mut self) {
        let server = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("redis-server could not start ({error}); `apt-get install redis-server`"));
        self.server = Some(server);
        let deadline = Instant::now() + Duration::from_secs(5);
        let client = redis::Client::open(self.url()).expect("url");
        loop {
            let answered =
                client.get_connection().and_then(|mut connection| redis::cmd("PING").query::<String>(&mut connection));
            match answered {
                Ok(_) => return,
                Err(error) if Instant::now() > deadline => {
                    panic!("the private redis-server on port {} did not answer within 5 s: {error}", self.port)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
