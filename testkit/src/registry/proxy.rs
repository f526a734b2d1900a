//! A registry that misbehaves on request: a proxy on 127.0.0.1 in front of
//! a [`Registry`](super::Registry). It passes every answer through as it
//! came, except the next layer blob after [`Proxy::inject`], which it
//! damages in one chosen way: the connection closed mid-blob, a blob
//! shorter or longer than its descriptor, or a stall mid-blob until the
//! test says go on (so a test can SIGKILL a puller exactly there, without
//! sleeps and luck). Nothing here reaches beyond loopback.
//!
//! One request per connection (`Connection: close` both ways): the proxy
//! then never parses a body, it only counts bytes, and a fault never spills
//! over into the next request.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Faults hit blobs of at least this size: layers, not the image config (a
/// JSON document of a few hundred bytes).
pub const MIN_FAULTY_BLOB: u64 = 64 * 1024;

/// What to do to the next layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Send `after` bytes of the blob, then close the connection.
    Close { after: u64 },
    /// Say (`Content-Length`) and send only the first `length` bytes.
    Short { length: u64 },
    /// Say and send `extra` bytes more than the blob has: garbage at its end.
    Long { extra: u64 },
    /// Send `after` bytes, then wait for [`Proxy::release`], then the rest.
    Stall { after: u64 },
}

/// The proxy; stopped when dropped.
pub struct Proxy {
    pub port: u16,
    shared: Arc<Shared>,
}

struct Shared {
    upstream: u16,
    state: Mutex<State>,
    changed: Condvar,
    stop: AtomicBool,
}

#[derive(Default)]
struct State {
    /// Armed by `inject`, taken by the next layer blob.
    fault: Option<Fault>,
    /// How many faults were served.
    injected: u64,
    /// Connections waiting in a `Stall` right now.
    stalled: usize,
    /// Set by `release`: every stall goes on (and later ones don't wait).
    released: bool,
}

impl Proxy {
    /// Listen on 127.0.0.1 (a free port), passing requests to `registry`.
    pub fn start(registry: &super::Registry) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(Shared {
            upstream: registry.port,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let accepting = Arc::clone(&shared);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let shared = Arc::clone(&accepting);
                // A broken connection is what some faults are about: ignore.
                std::thread::spawn(move || {
                    let _ = relay(client, &shared);
                });
            }
        });
        Proxy { port, shared }
    }

    /// `127.0.0.1:PORT`, to put in image references.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Damage the next layer blob served (once).
    pub fn inject(&self, fault: Fault) {
        let mut state = self.shared.state.lock().unwrap();
        state.fault = Some(fault);
        state.released = false;
    }

    /// How many faults were served so far.
    pub fn injected(&self) -> u64 {
        self.shared.state.lock().unwrap().injected
    }

    /// Wait until a connection is stalled mid-blob; false after `timeout`.
    pub fn wait_until_stalled(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.state.lock().unwrap();
        while state.stalled == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self.shared.changed.wait_timeout(state, left).unwrap().0;
        }
        true
    }

    /// Let stalled connections go on (to a client that may be dead).
    pub fn release(&self) {
        self.shared.state.lock().unwrap().released = true;
        self.shared.changed.notify_all();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.release();
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wake `accept`
    }
}

/// One request: forward it, then forward the answer, damaged if a fault is
/// armed and the answer is a layer blob.
fn relay(client: TcpStream, shared: &Shared) -> io::Result<()> {
    let mut from_client = BufReader::new(client.try_clone()?);
    let request = read_head(&mut from_client)?;
    let mut upstream = TcpStream::connect(("127.0.0.1", shared.upstream))?;
    upstream.write_all(rewrite_head(&request, None).as_bytes())?;
    let mut from_upstream = BufReader::new(upstream);
    let answer = read_head(&mut from_upstream)?;
    let length = content_length(&answer);
    let is_blob = request.starts_with("GET ") && request.contains("/blobs/sha256:");
    let fault = match length {
        Some(len) if is_blob && answer.starts_with("HTTP/1.1 200") && len >= MIN_FAULTY_BLOB => {
            let mut state = shared.state.lock().unwrap();
            let fault = state.fault.take();
            state.injected += u64::from(fault.is_some());
            fault
        }
        _ => None,
    };
    let mut client = client;
    let mut body = from_upstream.take(length.unwrap_or(u64::MAX));
    let said = match (fault, length) {
        (Some(Fault::Short { length }), _) => Some(length),
        (Some(Fault::Long { extra }), Some(len)) => Some(len + extra),
        _ => length,
    };
    client.write_all(rewrite_head(&answer, said).as_bytes())?;
    match fault {
        None => {
            io::copy(&mut body, &mut client)?;
        }
        Some(Fault::Close { after }) => {
            io::copy(&mut (&mut body).take(after), &mut client)?;
            client.shutdown(std::net::Shutdown::Both)?;
        }
        Some(Fault::Short { length }) => {
            io::copy(&mut body.take(length), &mut client)?;
        }
        Some(Fault::Long { extra }) => {
            io::copy(&mut body, &mut client)?;
            io::copy(&mut io::repeat(b'Z').take(extra), &mut client)?;
        }
        Some(Fault::Stall { after }) => {
            io::copy(&mut (&mut body).take(after), &mut client)?;
            client.flush()?;
            stall(shared);
            io::copy(&mut body, &mut client)?;
        }
    }
    Ok(())
}

/// Count ourselves as stalled, and wait for `release`.
fn stall(shared: &Shared) {
    let mut state = shared.state.lock().unwrap();
    state.stalled += 1;
    shared.changed.notify_all();
    while !state.released {
        state = shared.changed.wait(state).unwrap();
    }
    state.stalled -= 1;
}

/// The request or status line and headers, up to the empty line.
fn read_head(reader: &mut impl BufRead) -> io::Result<String> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no head"));
        }
        if line == "\r\n" {
            return Ok(head);
        }
        head.push_str(&line);
    }
}

fn content_length(head: &str) -> Option<u64> {
    head.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(str::to_string)
        })
        .and_then(|v| v.trim().parse().ok())
}

/// The head with `Connection: close`, and `Content-Length: said` if given.
fn rewrite_head(head: &str, said: Option<u64>) -> String {
    let mut out = String::new();
    for line in head.lines() {
        let name = line
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if name == "connection" || (said.is_some() && name == "content-length") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    if let Some(length) = said {
        out.push_str(&format!("Content-Length: {length}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}
