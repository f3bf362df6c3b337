//! A fake proxy: a thread holding a connection to ctld as a `proxy` peer, answering every
//! push as told and recording it.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use ringside_wire::{Conn, Frame, Peer, Reply, Request};

use crate::{wait_for, WAIT};

/// How a fake proxy answers pushes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Behaviour {
    Ack,
    /// Acknowledge, naming this key as waiting for a restart.
    AckWaiting(&'static str),
    Refuse,
    Ignore,
}

pub struct FakeProxy {
    /// Every push received: generation, text, arrival.
    pub pushes: Arc<Mutex<Vec<(u64, String, Instant)>>>,
    stream: UnixStream,
    thread: Option<thread::JoinHandle<()>>,
}

impl FakeProxy {
    pub fn connect(socket: &Path, node: &str, generation: u64) -> FakeProxy {
        FakeProxy::connect_with(socket, node, generation, Behaviour::Ack)
    }

    pub fn connect_with(
        socket: &Path,
        node: &str,
        generation: u64,
        behaviour: Behaviour,
    ) -> FakeProxy {
        let mut conn = Conn::connect(socket).unwrap();
        ringside_wire::client_handshake(
            &mut conn,
            Peer::Proxy {
                node_id: node.into(),
                role: "sidecar".into(),
                generation,
                labels: Default::default(),
            },
        )
        .unwrap();
        let stream = conn.stream().try_clone().unwrap();
        let pushes = Arc::new(Mutex::new(Vec::new()));
        let p = pushes.clone();
        let thread = thread::spawn(move || loop {
            let Ok(Frame::Request { id, request }) = conn.recv() else {
                return;
            };
            let reply = match request {
                Request::PushConfig { generation, config } => {
                    p.lock().unwrap().push((generation, config, Instant::now()));
                    match behaviour {
                        Behaviour::Ack => Reply::ack(generation),
                        Behaviour::AckWaiting(key) => Reply::Ack {
                            generation,
                            pending_restart: vec![key.into()],
                        },
                        Behaviour::Refuse => Reply::Error {
                            message: format!("generation {generation} not applied"),
                            errors: vec!["listeners[0].bind: address in use".into()],
                        },
                        Behaviour::Ignore => continue,
                    }
                }
                other => Reply::error(format!("{} is not served here", other.name())),
            };
            if conn.reply(id, reply).is_err() {
                return;
            }
        });
        FakeProxy {
            pushes,
            stream,
            thread: Some(thread),
        }
    }

    pub fn generations(&self) -> Vec<u64> {
        self.pushes.lock().unwrap().iter().map(|p| p.0).collect()
    }

    pub fn last(&self) -> Option<(u64, String)> {
        self.pushes
            .lock()
            .unwrap()
            .last()
            .map(|p| (p.0, p.1.clone()))
    }

    /// Waits until a push of `generation` arrived; returns its text and arrival time.
    pub fn wait_push(&self, generation: u64) -> (String, Instant) {
        wait_for(&format!("push of generation {generation}"), WAIT, || {
            self.pushes
                .lock()
                .unwrap()
                .iter()
                .find(|p| p.0 == generation)
                .map(|p| (p.1.clone(), p.2))
        })
    }

    pub fn close(mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for FakeProxy {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}
