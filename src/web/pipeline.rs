//! Bounded pipelining. An HTTP/1.1 client may send requests without reading the answers
//! (pipelining). actix-http's dispatcher reads whatever arrives (up to 128 KiB at a time),
//! decodes every request in it at once and answers them into its write buffer: a client
//! that pipelines and never reads made it hold thousands of decoded requests (measured: 24
//! MB of server memory per connection for 720 KB of `GET /health`).
//!
//! [`Paced`] is the TCP stream every HTTP connection is served on. With [`Pace`], its state
//! shared with the requests served on it (through the connection's data, read by the edge
//! middleware), it decides when the dispatcher may read:
//! - **never while the client is not reading**: once a write waits for the client, nothing
//!   more is read until the dispatcher's whole buffer has left (TCP back-pressure: the
//!   kernel's window closes and the client's writes stop);
//! - **a request starts only while fewer than `server.max_pipelined_requests` answers wait**
//!   unsent ([`Pace::turn`]); the next one waits until the client has read them;
//! - **at most [`READ_AHEAD`] bytes ahead of what the dispatcher has used**: each request
//!   that starts says how many bytes it took (its head as sent, and its declared body), so
//!   the dispatcher never holds more than a KiB of requests it has not started. When
//!   that estimate falls short (unusual spacing in a head) the dispatcher, idle with its
//!   buffer flushed and nothing started, is let read again, so an estimate can slow a
//!   connection down by a poll but never stall it;
//! - a client that reads nothing for `server.client_timeout_ms` while an answer waits is
//!   cut (the write fails with `TimedOut`, the dispatcher closes the connection), so an
//!   unread connection cannot hold its slot for ever.
//!
//! An upgraded connection leaves this wrapper (`Paced::into_inner`) with its dispatcher.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future as _};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::metrics::Metrics;

/// Bytes the dispatcher may read beyond what the requests it started have used: a
/// browser's request head. Each request actix-http decodes costs about 6.7 KB until it is
/// answered, so this bounds what a connection holds (a larger head is read a KiB per poll;
/// a declared body is allowed in full on top).
pub const READ_AHEAD: u64 = 1 << 10;

/// One connection's pipelining state, shared by its [`Paced`] stream and the requests
/// served on it (in the connection's data).
pub struct Pace {
    limit: usize,
    /// Answers started since the dispatcher's write buffer was last empty.
    unsent: Cell<usize>,
    /// A write is waiting for the client.
    write_blocked: Cell<bool>,
    /// Bytes read from the connection, in all.
    read: Cell<u64>,
    /// Bytes the started requests used (heads as estimated, bodies as read), never more
    /// than `read`.
    used: Cell<u64>,
    /// Body bytes declared by started requests and not read yet (they may be read).
    body_due: Cell<u64>,
    /// Requests started but not answered yet.
    in_progress: Cell<u32>,
    /// Of those, with a chunked body (its length unknown: reading is not limited).
    streaming: Cell<u32>,
    /// Since the dispatcher last asked to read: requests started, and whether it flushed.
    started_since: Cell<u32>,
    flushed_since: Cell<bool>,
    /// The dispatcher, parked on a refused read.
    reader: RefCell<Option<Waker>>,
    /// Requests waiting for their turn.
    waiting: RefCell<Vec<Waker>>,
    metrics: Arc<Metrics>,
}

/// A started request's place, held until its answer is produced.
pub struct Turn {
    pace: Rc<Pace>,
    chunked: bool,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let pace = &self.pace;
        pace.in_progress.set(pace.in_progress.get().saturating_sub(1));
        if self.chunked {
            pace.streaming.set(pace.streaming.get().saturating_sub(1));
            // Whatever was read while its body streamed counts as used.
            pace.used.set(pace.read.get());
        }
        pace.wake_reader();
    }
}

impl Pace {
    fn new(limit: usize, metrics: Arc<Metrics>) -> Rc<Pace> {
        Rc::new(Pace {
            limit: limit.max(1),
            unsent: Cell::new(0),
            write_blocked: Cell::new(false),
            read: Cell::new(0),
            used: Cell::new(0),
            body_due: Cell::new(0),
            in_progress: Cell::new(0),
            streaming: Cell::new(0),
            started_since: Cell::new(0),
            flushed_since: Cell::new(false),
            reader: RefCell::new(None),
            waiting: RefCell::new(Vec::new()),
            metrics,
        })
    }

    fn full(&self) -> bool {
        self.unsent.get() >= self.limit
    }

    fn wake_reader(&self) {
        if let Some(waker) = self.reader.borrow_mut().take() {
            waker.wake();
        }
    }

    /// How many bytes the dispatcher may read now (0: it waits).
    fn allowance(&self) -> u64 {
        let idle = self.flushed_since.get() && self.started_since.get() == 0 && self.in_progress.get() == 0;
        self.started_since.set(0);
        self.flushed_since.set(false);
        if self.write_blocked.get() || self.full() {
            return 0;
        }
        if self.streaming.get() > 0 {
            return READ_AHEAD;
        }
        if idle {
            // Flushed, nothing started, nothing in progress: whatever it holds is not a
            // whole request, so it needs more bytes (the head estimate fell short).
            self.used.set(self.read.get());
        }
        (READ_AHEAD + self.body_due.get()).saturating_sub(self.read.get() - self.used.get())
    }

    /// `n` bytes were read: declared body bytes are used as they arrive.
    fn took(&self, n: u64) {
        self.read.set(self.read.get() + n);
        let body = n.min(self.body_due.get());
        self.body_due.set(self.body_due.get() - body);
        self.used.set((self.used.get() + body).min(self.read.get()));
    }

    /// The dispatcher's write buffer is empty (everything it wrote was taken by the kernel):
    /// requests may start and the connection may read again.
    fn drained(&self) {
        self.write_blocked.set(false);
        self.unsent.set(0);
        self.flushed_since.set(true);
        for waker in self.waiting.borrow_mut().drain(..) {
            waker.wake();
        }
        // A reader refused while a request is in progress is woken when it ends instead;
        // waking it at every flush would spin.
        if self.in_progress.get() == 0 {
            self.wake_reader();
        }
    }

    /// Waits until a request may start (fewer than the limit of answers unsent), then counts
    /// its answer as unsent and the bytes it took: `head_bytes` (its head as sent) and
    /// `body_bytes` (its declared body); `chunked` for a body of unknown length. Answers the
    /// request's place, to hold until its answer is produced.
    pub async fn turn(self: Rc<Self>, head_bytes: u64, body_bytes: u64, chunked: bool) -> Turn {
        if self.full() {
            self.metrics.pipeline_wait();
            poll_fn(|cx| {
                if self.full() {
                    let mut waiting = self.waiting.borrow_mut();
                    if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
                        waiting.push(cx.waker().clone());
                    }
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
            .await;
        }
        self.unsent.set(self.unsent.get() + 1);
        self.started_since.set(self.started_since.get() + 1);
        self.in_progress.set(self.in_progress.get() + 1);
        self.used.set((self.used.get() + head_bytes).min(self.read.get()));
        self.body_due.set(self.body_due.get() + body_bytes);
        if chunked {
            self.streaming.set(self.streaming.get() + 1);
        }
        Turn { pace: self, chunked }
    }
}

/// An accepted TCP stream, paced (see the module's documentation).
pub struct Paced {
    io: TcpStream,
    pace: Rc<Pace>,
    /// How long a write may wait for the client to read.
    write_timeout: Duration,
    /// Set while a write waits for the client.
    write_deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Paced {
    /// Wraps an accepted stream allowing `limit` unsent responses; a write waiting more
    /// than `write_timeout` for its client fails.
    pub fn new(io: TcpStream, limit: usize, write_timeout: Duration, metrics: Arc<Metrics>) -> Paced {
        Paced { io, pace: Pace::new(limit, metrics), write_timeout, write_deadline: None }
    }

    /// The TCP stream (for its options and addresses).
    pub fn get_ref(&self) -> &TcpStream {
        &self.io
    }

    /// The pacing state requests on this connection share.
    pub fn pace(&self) -> Rc<Pace> {
        self.pace.clone()
    }

    /// The stream itself, for an upgraded connection (its own buffers and limits take over).
    pub fn into_inner(self) -> TcpStream {
        self.io
    }

    /// A write went out (the deadline is off), or waits for the client (reads stop; the
    /// deadline runs).
    fn after_write(&mut self, cx: &mut Context<'_>, written: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(result) => {
                self.write_deadline = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                self.pace.write_blocked.set(true);
                self.blocked(cx)
            }
        }
    }

    /// The write waits for the client: arms the deadline, or fails once it has passed.
    fn blocked(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let timeout = self.write_timeout;
        let deadline = self.write_deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.pace.metrics.write_timeout();
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the client read nothing in time")))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Paced {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let allowance = this.pace.allowance();
        if allowance == 0 {
            // Woken when the dispatcher's buffer is flushed or a request ends.
            *this.pace.reader.borrow_mut() = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let room = buf.remaining().min(usize::try_from(allowance).unwrap_or(usize::MAX));
        // Read into at most `room` bytes of the caller's buffer (initialised first: no
        // unsafe code in this crate).
        let n = {
            let mut limited = ReadBuf::new(buf.initialize_unfilled_to(room));
            match Pin::new(&mut this.io).poll_read(cx, &mut limited) {
                Poll::Ready(Ok(())) => limited.filled().len(),
                other => return other,
            }
        };
        buf.advance(n);
        this.pace.took(n as u64);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Paced {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write(cx, data);
        self.after_write(cx, written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.after_write(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    /// The dispatcher flushes once its whole buffer is written: every answer started so far
    /// has left.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let flushed = Pin::new(&mut this.io).poll_flush(cx);
        if flushed.is_ready() {
            this.pace.drained();
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
