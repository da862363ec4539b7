//! Clients that try to stop the scrape: slow readers, connections stalled in their headers,
//! one address opening too many connections, a load of scrapes, and arbitrary bytes. Each
//! test starts the real binary on loopback and prints its figures.
//!
//! `FLEETSIM_STRESS=1` makes the load test the long one the issue measured (wrk, 60 s at 64
//! connections on 1,000 servers); without it, it runs for 5 s.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{Exporter, get, require_tool};

/// The exporter's resident memory, kB.
fn rss_kb(exporter: &Exporter) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", exporter.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Raises this process's limit of open files: the tests hold over a thousand connections.
fn allow_open_files(n: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < n {
            limit.rlim_cur = n.min(limit.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
    assert!(
        limit.rlim_cur >= n,
        "cannot open {n} files: {}",
        limit.rlim_cur
    );
}

/// A connection to `to` from the loopback address `from` (any of 127/8 is this machine).
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::new(IpAddr::V4(from), 0).into())
        .unwrap();
    socket
        .connect_timeout(&to.into(), Duration::from_secs(5))
        .unwrap();
    socket.into()
}

/// A whole scrape of `/metrics`, timed.
fn timed_scrape(addr: SocketAddr) -> (u16, usize, Duration) {
    let started = Instant::now();
    let r = get(addr, "/metrics");
    (r.status, r.body.len(), started.elapsed())
}

/// Whether the server closes `stream` within `limit` (reads give end of file or an error).
fn closed_within(mut stream: &TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 64 * 1024];
    while Instant::now() < deadline {
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

/// How many files the exporter has open (its sockets among them).
fn open_files(exporter: &Exporter) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", exporter.child.id()))
        .unwrap()
        .count()
}

#[test]
fn slow_readers_do_not_stop_a_scrape_and_are_cut_off() {
    let exporter = Exporter::start(&["--servers", "10000"]);
    let (status, bytes, first) = timed_scrape(exporter.addr);
    assert_eq!(status, 200);
    let idle_kb = rss_kb(&exporter);
    let idle_files = open_files(&exporter);
    // 64 clients that ask for a scrape of 22 MB and read a byte a second (for 40 s). Once
    // the exporter has cut them off, what is left in their sockets' buffers keeps them
    // reading: the cut is seen from the exporter's side, in its open files.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..64)
        .map(|_| {
            let (addr, stop) = (exporter.addr, stop.clone());
            std::thread::spawn(move || {
                let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
                let _ = socket2::SockRef::from(&s).set_recv_buffer_size(64 * 1024);
                write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
                let mut byte = [0u8; 1];
                let started = Instant::now();
                while !stop.load(std::sync::atomic::Ordering::Relaxed)
                    && started.elapsed() < Duration::from_secs(40)
                {
                    let _ = s.read(&mut byte);
                    std::thread::sleep(Duration::from_secs(1));
                }
            })
        })
        .collect();
    // Once they hold their scrapes, a normal one still answers at once.
    std::thread::sleep(Duration::from_secs(2));
    let during_kb = rss_kb(&exporter);
    let during_files = open_files(&exporter);
    let (status, during_bytes, during) = timed_scrape(exporter.addr);
    let health = Instant::now();
    assert_eq!(get(exporter.addr, "/-/healthy").status, 200);
    let health = health.elapsed();
    // The exporter closes the slow readers' connections once they have stalled 10 s.
    let started = Instant::now();
    while open_files(&exporter) > idle_files + 4 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let cut_after = started.elapsed() + Duration::from_secs(2);
    let after_files = open_files(&exporter);
    std::thread::sleep(Duration::from_secs(1));
    let after_kb = rss_kb(&exporter);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    println!(
        "10,000 servers, {bytes} bytes a scrape: alone {first:?}; beside 64 slow readers \
         {during:?} (/-/healthy {health:?}); the slow readers' connections closed {cut_after:?} \
         after they began ({idle_files} files open idle, {during_files} with them, \
         {after_files} after); RSS idle {idle_kb} kB, with them {during_kb} kB, after {after_kb} kB"
    );
    assert_eq!(status, 200);
    assert!(
        during_bytes > 20_000_000,
        "a scrape of {during_bytes} bytes"
    );
    assert!(
        during < Duration::from_secs(1),
        "a scrape beside slow readers took {during:?}"
    );
    assert!(
        health < Duration::from_secs(1),
        "/-/healthy took {health:?}"
    );
    assert!(
        during_files >= idle_files + 60,
        "the slow readers were not connected"
    );
    assert!(
        after_files <= idle_files + 4,
        "the slow readers were never cut off"
    );
    assert!(
        (after_kb as f64) <= idle_kb as f64 * 1.5 + 10_240.0,
        "memory {idle_kb} kB idle, {after_kb} kB after the slow readers left"
    );
}

#[test]
fn stalled_headers_and_a_greedy_address_do_not_stop_a_scrape() {
    allow_open_files(4096);
    let exporter = Exporter::start(&["--servers", "1000"]);
    // 1,000 connections from this address that send half a request and wait.
    let stalled: Vec<TcpStream> = (0..1000)
        .map(|_| {
            let mut s = connect_from(Ipv4Addr::LOCALHOST, exporter.addr);
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let (status, _, during) = timed_scrape(exporter.addr);
    let health = Instant::now();
    assert_eq!(get(exporter.addr, "/-/healthy").status, 200);
    let health = health.elapsed();
    assert_eq!(status, 200);

    // Another address that opens more than its share: the connections past it are closed
    // at once, and the others' still answer.
    let greedy = Ipv4Addr::new(127, 0, 0, 3);
    let share = 1024;
    let mut held: Vec<TcpStream> = (0..share)
        .map(|_| connect_from(greedy, exporter.addr))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let over: Vec<TcpStream> = (0..8)
        .map(|_| connect_from(greedy, exporter.addr))
        .collect();
    let refused = over
        .iter()
        .filter(|s| closed_within(s, Duration::from_secs(2)))
        .count();
    let (status_beside, _, beside) = timed_scrape(exporter.addr);
    assert_eq!(status_beside, 200);
    // Still open: a connection within the share is served.
    let last = held.last_mut().unwrap();
    last.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    last.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = last.read_to_string(&mut answer);

    // The stalled headers are cut by the header timeout (20 s).
    let started = Instant::now();
    let cut = stalled
        .iter()
        .take(20)
        .filter(|s| closed_within(s, Duration::from_secs(30)))
        .count();
    let waited = started.elapsed();
    println!(
        "1,000 stalled headers: a scrape {during:?}, /-/healthy {health:?}; {refused} of 8 \
         connections past an address's share of {share} closed at once, a scrape beside them \
         {beside:?}; {cut} of 20 stalled connections cut within {waited:?}"
    );
    assert!(
        during < Duration::from_secs(1),
        "a scrape beside stalled headers took {during:?}"
    );
    assert!(
        health < Duration::from_secs(1),
        "/-/healthy took {health:?}"
    );
    assert_eq!(refused, 8, "connections past the share stayed open");
    assert!(beside < Duration::from_secs(1), "{beside:?}");
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "within the share: {answer:?}"
    );
    assert_eq!(cut, 20, "stalled headers were not cut off");
}

/// `wrk`'s summary of a run: requests, non-2xx answers and socket errors.
fn wrk(addr: SocketAddr, seconds: u32, connections: u32) -> (u64, u64, u64, String) {
    let out = std::process::Command::new(require_tool("wrk", "wrk"))
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--timeout",
            "10s",
            "--latency",
            &format!("http://{addr}/metrics"),
        ])
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let number_after = |key: &str| -> u64 {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key).map(str::to_string))
            .map(|rest| {
                rest.split(|c: char| !c.is_ascii_digit())
                    .find(|p| !p.is_empty())
                    .unwrap_or("0")
                    .parse()
                    .unwrap()
            })
            .unwrap_or(0)
    };
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let socket_errors: u64 = text
        .lines()
        .find(|l| l.trim().starts_with("Socket errors"))
        .map(|l| {
            l.split(',')
                .filter_map(|p| p.split_whitespace().last())
                .filter_map(|n| n.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    (
        requests,
        number_after("Non-2xx or 3xx responses:"),
        socket_errors,
        text,
    )
}

/// Waits for the runtime's idle blocking threads to end (they linger 10 s after a load),
/// then reads the exporter's resident memory.
fn settled_rss_kb(exporter: &Exporter) -> u64 {
    std::thread::sleep(Duration::from_secs(12));
    rss_kb(exporter)
}

#[test]
fn a_load_of_scrapes_gets_no_error_and_memory_comes_back() {
    let long = std::env::var_os("FLEETSIM_STRESS").is_some();
    let seconds = if long { 60 } else { 5 };
    let exporter = Exporter::start(&["--servers", "1000"]);
    assert_eq!(get(exporter.addr, "/metrics").status, 200);
    let fresh_kb = rss_kb(&exporter);
    // A first load sets up what a load needs (threads' arenas, buffers); memory must come
    // back to that after every later one, however long.
    let (warm_up, ..) = wrk(exporter.addr, 2, 64);
    assert!(warm_up > 0);
    let before_kb = settled_rss_kb(&exporter);
    let (requests, non_2xx, socket_errors, text) = wrk(exporter.addr, seconds, 64);
    let after_kb = settled_rss_kb(&exporter);
    let p99 = text
        .lines()
        .find(|l| l.trim().starts_with("99%"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    println!(
        "wrk {seconds} s x 64 connections, 1,000 servers: {requests} requests ({:.0}/s), \
         {non_2xx} non-2xx, {socket_errors} socket errors, latency {p99}; RSS {fresh_kb} kB \
         fresh, {before_kb} kB after a first load, {after_kb} kB after this one",
        requests as f64 / seconds as f64
    );
    assert!(requests > 0, "wrk made no request:\n{text}");
    assert_eq!(non_2xx, 0, "{text}");
    assert_eq!(socket_errors, 0, "{text}");
    assert!(
        (after_kb as f64) <= before_kb as f64 * 1.10,
        "memory {before_kb} kB before the load, {after_kb} kB after"
    );
}

/// A small deterministic generator (xorshift), so that a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A request, or bytes that are nearly one, or no request at all.
fn mutated_request(rng: &mut Rng) -> Vec<u8> {
    let valid = [
        "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /-/healthy HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text\r\n\r\n",
        "HEAD / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n",
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
        "GET /metrics HTTP/1.0\r\n\r\n",
    ];
    let mut bytes = valid[rng.below(valid.len())].as_bytes().to_vec();
    match rng.below(8) {
        // Arbitrary bytes.
        0 => (0..rng.below(4096)).map(|_| rng.next() as u8).collect(),
        // Bytes flipped, inserted or removed.
        1..=3 => {
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(bytes.len() + 1);
                match rng.below(3) {
                    0 if at < bytes.len() => bytes[at] = rng.next() as u8,
                    1 => bytes.insert(at, rng.next() as u8),
                    _ if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => {}
                }
            }
            bytes
        }
        // A huge header, a huge target, many headers.
        4 => {
            let mut b = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
            b.extend(std::iter::repeat_n(b'a', 1 + rng.below(200_000)));
            b.extend_from_slice(b"\r\n\r\n");
            b
        }
        5 => {
            let mut b = b"GET /".to_vec();
            b.extend(std::iter::repeat_n(b'x', 1 + rng.below(100_000)));
            b.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
            b
        }
        6 => {
            let mut b = b"GET /metrics HTTP/1.1\r\n".to_vec();
            for i in 0..rng.below(500) {
                b.extend_from_slice(format!("H{i}: v\r\n").as_bytes());
            }
            b.extend_from_slice(b"\r\n");
            b
        }
        // Pipelined requests, one of them cut.
        _ => {
            let mut b = bytes.repeat(1 + rng.below(5));
            b.truncate(b.len() - rng.below(b.len()));
            b
        }
    }
}

#[test]
fn arbitrary_bytes_never_get_a_server_error_nor_stop_the_process() {
    let exporter = Exporter::start(&["--servers", "20"]);
    let seed = 0x5eed_u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
    let mut rng = Rng(seed | 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    let (mut sent, mut answered, mut closed) = (0, 0, 0);
    let mut statuses = std::collections::BTreeMap::new();
    while Instant::now() < deadline {
        let bytes = mutated_request(&mut rng);
        let mut s = TcpStream::connect_timeout(&exporter.addr, Duration::from_secs(5)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(&bytes);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        sent += 1;
        let text = String::from_utf8_lossy(&answer);
        // Every response on the connection (pipelined requests get one each).
        let codes: Vec<u16> = text
            .match_indices("HTTP/1.")
            .filter_map(|(at, _)| text[at..].split(' ').nth(1)?.parse().ok())
            .filter(|c| (100..600).contains(c))
            .collect();
        if codes.is_empty() {
            closed += 1;
        } else {
            answered += 1;
        }
        for code in codes {
            *statuses.entry(code).or_insert(0) += 1;
            assert!(
                code < 500 || code == 503,
                "seed {seed}: {code} for {:?}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            );
        }
    }
    println!(
        "seed {seed}: {sent} connections in 5 s, {answered} answered, {closed} closed \
         unanswered; statuses {statuses:?}"
    );
    assert!(sent > 100, "only {sent} connections");
    assert_eq!(get(exporter.addr, "/-/healthy").status, 200, "seed {seed}");
    assert_eq!(get(exporter.addr, "/metrics").status, 200, "seed {seed}");
}
