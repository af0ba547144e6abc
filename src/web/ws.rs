//! The WebSocket connection itself: one upgraded TCP stream, read and written in small
//! buffers sized for the frames Rampart really exchanges. [`Connection`] is a `Stream` of
//! client messages that its session actor adds to its context (`ctx.add_stream`), so one
//! future per socket does all the I/O: it writes the frames waiting in the [`Outbox`]
//! (whole, pre-encoded frames shared by every socket they go to, written with one
//! vectored write), then reads and decodes what the client sent — headers checked by the
//! [`FrameScanner`] as the bytes arrive, frames parsed by actix-http's ws codec,
//! fragmented messages reassembled up to the hard limit and text checked as UTF-8. No
//! buffer is held while a socket is idle: the read buffer is released once everything in
//! it is decoded, and the outbox holds only frames not yet written.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use actix_codec::Decoder as _;
use actix_http::ws::{self as codec, CloseReason, Frame, Item, ProtocolError};
use actix_web::web::{Bytes, BytesMut};
use bytestring::ByteString;
use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;

use crate::web::frame_guard::FrameScanner;
use crate::web::gate::ConnSlot;

/// How long a closed socket may take to write what it still has (its close frame last) and
/// to hear its client close too.
pub const CLOSE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// Bytes asked of the kernel per read: a few of Rampart's frames.
const READ_CHUNK: usize = 2048;
/// Frames written with one vectored write at most.
const WRITE_BATCH: usize = 16;

/// A message from the client: a whole data message (fragments reassembled) or a control frame.
#[derive(Debug)]
pub enum Incoming {
    /// A text message, valid UTF-8.
    Text(ByteString),
    /// A binary message.
    Binary(Bytes),
    /// A ping (to answer with its payload).
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// The client closes.
    Close(Option<CloseReason>),
}

/// Why reading stopped: a protocol error, or the hard limit (refused at a header).
#[derive(Debug)]
pub enum ReadError {
    /// A frame or a message past the hard limit.
    TooLarge,
    /// A text message that is not UTF-8.
    InvalidUtf8,
    /// Any other breach of RFC 6455, or an I/O error.
    Protocol(ProtocolError),
}

/// Frames waiting to be written, shared by a session (which queues them) and its
/// [`Connection`] (which writes them). Bounded: a full outbox is a slow client.
pub struct Outbox {
    frames: VecDeque<Bytes>,
    /// Bytes of the front frame already written.
    written: usize,
    limit: usize,
    /// Nothing more is queued after the close frame; the connection ends once it is out.
    closing: bool,
    waker: Option<Waker>,
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The outbox holds its limit: the client does not read fast enough.
    Full,
    /// The connection is closing.
    Closing,
}

impl Outbox {
    /// An outbox holding at most `limit` frames.
    pub fn new(limit: usize) -> Rc<RefCell<Outbox>> {
        Rc::new(RefCell::new(Outbox { frames: VecDeque::new(), written: 0, limit, closing: false, waker: None }))
    }

    /// Queues a whole frame.
    pub fn push(&mut self, frame: Bytes) -> Result<(), Refused> {
        if self.closing {
            return Err(Refused::Closing);
        }
        if self.frames.len() >= self.limit {
            return Err(Refused::Full);
        }
        self.frames.push_back(frame);
        self.wake();
        Ok(())
    }

    /// Queues the close frame after what is queued (or, `drop_queued`, instead of it: a slow
    /// client), and nothing after it.
    pub fn close(&mut self, reason: Option<CloseReason>, drop_queued: bool) {
        if self.closing {
            return;
        }
        if drop_queued {
            // A partly written frame must still be finished, or the stream is garbled.
            let keep = usize::from(self.written > 0);
            self.frames.truncate(keep);
        }
        let mut frame = BytesMut::with_capacity(16);
        codec::Parser::write_close(&mut frame, reason, false);
        self.frames.push_back(frame.freeze());
        self.closing = true;
        self.wake();
    }

    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

/// One upgraded connection: the client's messages, as a stream; what the outbox holds is
/// written whenever the stream is polled. It ends when the client's side ends, or once the
/// close frame has been written. Dropped while its outbox is closing (the session closed
/// and stopped), it lingers on its own: it writes what is left, the close frame last, then
/// reads until the client closes too, within [`CLOSE_DEADLINE`], and only then lets the
/// TCP connection go (unread input at close would turn the goodbye into a reset).
pub struct Connection {
    io: Option<TcpStream>,
    /// The connection's place under the ceiling, held until the TCP connection is gone.
    slot: Option<ConnSlot>,
    buf: BytesMut,
    codec: codec::Codec,
    scanner: FrameScanner,
    /// A fragmented message being reassembled: whether it is text, and its bytes.
    partial: Option<(bool, BytesMut)>,
    outbox: Rc<RefCell<Outbox>>,
    hard_limit: usize,
    /// Still reading (false after a protocol error: only the close frame is still written).
    reading: bool,
    done: bool,
}

impl Connection {
    /// The connection on `io`, whose first bytes (read with the upgrade request) are
    /// `leftover`; frames and messages past `hard_limit` payload bytes are refused.
    pub fn new(
        io: TcpStream,
        leftover: BytesMut,
        slot: ConnSlot,
        outbox: Rc<RefCell<Outbox>>,
        hard_limit: usize,
    ) -> Connection {
        let mut scanner = FrameScanner::new(hard_limit);
        // Bytes past the limit already in the upgrade's buffer fail at the first decode.
        let _ = scanner.feed(&leftover);
        Connection {
            io: Some(io),
            slot: Some(slot),
            buf: leftover,
            codec: codec::Codec::new().max_size(hard_limit),
            scanner,
            partial: None,
            outbox,
            hard_limit,
            reading: true,
            done: false,
        }
    }

    /// Writes what the outbox holds; `Ready(Ok(true))` once the close frame is out.
    fn flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let Some(io) = self.io.as_mut() else { return Poll::Ready(Ok(true)) };
        let mut outbox = self.outbox.borrow_mut();
        outbox.waker = Some(cx.waker().clone());
        while !outbox.frames.is_empty() {
            let written = outbox.written;
            let slices: Vec<IoSlice<'_>> = outbox
                .frames
                .iter()
                .take(WRITE_BATCH)
                .enumerate()
                .map(|(i, f)| IoSlice::new(if i == 0 { &f[written..] } else { &f[..] }))
                .collect();
            let n = match Pin::new(&mut *io).poll_write_vectored(cx, &slices) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            drop(slices);
            let mut left = n;
            while left > 0 {
                let front = outbox.frames.front().map_or(0, |f| f.len() - outbox.written);
                if left >= front {
                    left -= front;
                    outbox.frames.pop_front();
                    outbox.written = 0;
                } else {
                    outbox.written += left;
                    left = 0;
                }
            }
        }
        if outbox.frames.capacity() > 4 * WRITE_BATCH {
            outbox.frames.shrink_to(WRITE_BATCH);
        }
        Poll::Ready(Ok(outbox.closing))
    }

    /// The next whole message from what is buffered, if one is complete.
    fn decode(&mut self) -> Result<Option<Incoming>, ReadError> {
        loop {
            let frame = match self.codec.decode(&mut self.buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    if self.buf.is_empty() {
                        // Idle: hold no buffer.
                        self.buf = BytesMut::new();
                    }
                    return Ok(None);
                }
                Err(ProtocolError::Overflow) => return Err(ReadError::TooLarge),
                Err(e) => return Err(ReadError::Protocol(e)),
            };
            let whole = |text: bool, bytes: Bytes| -> Result<Incoming, ReadError> {
                if text {
                    ByteString::try_from(bytes).map(Incoming::Text).map_err(|_| ReadError::InvalidUtf8)
                } else {
                    Ok(Incoming::Binary(bytes))
                }
            };
            return match frame {
                Frame::Text(bytes) => whole(true, bytes).map(Some),
                Frame::Binary(bytes) => whole(false, bytes).map(Some),
                Frame::Ping(bytes) => Ok(Some(Incoming::Ping(bytes))),
                Frame::Pong(bytes) => Ok(Some(Incoming::Pong(bytes))),
                Frame::Close(reason) => Ok(Some(Incoming::Close(reason))),
                Frame::Continuation(item) => match (item, self.partial.take()) {
                    (Item::FirstText(bytes), None) => {
                        self.partial = Some((true, BytesMut::from(&bytes[..])));
                        continue;
                    }
                    (Item::FirstBinary(bytes), None) => {
                        self.partial = Some((false, BytesMut::from(&bytes[..])));
                        continue;
                    }
                    (Item::Continue(bytes), Some((text, mut so_far))) => {
                        if so_far.len() + bytes.len() > self.hard_limit {
                            return Err(ReadError::TooLarge);
                        }
                        so_far.extend_from_slice(&bytes);
                        self.partial = Some((text, so_far));
                        continue;
                    }
                    (Item::Last(bytes), Some((text, mut so_far))) => {
                        if so_far.len() + bytes.len() > self.hard_limit {
                            return Err(ReadError::TooLarge);
                        }
                        so_far.extend_from_slice(&bytes);
                        whole(text, so_far.freeze()).map(Some)
                    }
                    // The codec refuses continuations out of order; this is a fallback.
                    _ => Err(ReadError::Protocol(ProtocolError::ContinuationNotStarted)),
                },
            };
        }
    }
}

impl Stream for Connection {
    type Item = Result<Incoming, ReadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done || this.io.is_none() {
            return Poll::Ready(None);
        }
        match this.flush(cx) {
            Poll::Ready(Ok(true)) => {
                // The close frame is out: the connection ends (dropping the stream closes it).
                this.done = true;
                if let Some(io) = this.io.as_mut() {
                    let _ = Pin::new(io).poll_shutdown(cx);
                }
                return Poll::Ready(None);
            }
            Poll::Ready(Err(_)) => {
                this.done = true;
                return Poll::Ready(None);
            }
            Poll::Ready(Ok(false)) | Poll::Pending => {}
        }
        while this.reading {
            match this.decode() {
                Ok(Some(message)) => return Poll::Ready(Some(Ok(message))),
                Ok(None) => {}
                Err(e) => {
                    // Nothing more is read; the session closes, and the close frame is flushed.
                    this.reading = false;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut read = ReadBuf::new(&mut chunk);
            let Some(io) = this.io.as_mut() else { return Poll::Ready(None) };
            match Pin::new(io).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) if read.filled().is_empty() => {
                    // The client's side ended.
                    this.done = true;
                    return Poll::Ready(None);
                }
                Poll::Ready(Ok(())) => {
                    let bytes = read.filled();
                    if this.scanner.feed(bytes).is_err() {
                        this.reading = false;
                        return Poll::Ready(Some(Err(ReadError::TooLarge)));
                    }
                    this.buf.extend_from_slice(bytes);
                }
                Poll::Ready(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(ReadError::Protocol(ProtocolError::Io(e)))));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Pending
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let (Some(io), false) = (self.io.take(), self.done) else { return };
        let outbox = self.outbox.borrow();
        if !outbox.closing {
            // Stopped without a close (the server is going): the connection just ends.
            return;
        }
        let written = outbox.written;
        let frames: Vec<Bytes> = outbox
            .frames
            .iter()
            .enumerate()
            .map(|(i, f)| if i == 0 { f.slice(written..) } else { f.clone() })
            .collect();
        let slot = self.slot.take();
        if let Some(arbiter) = actix_rt::Arbiter::try_current() {
            arbiter.spawn(linger(io, frames, slot));
        }
    }
}

/// A closed connection's last steps: its remaining frames (the close frame last), our FIN,
/// then the client's input read and dropped until it closes too, within [`CLOSE_DEADLINE`].
async fn linger(mut io: TcpStream, frames: Vec<Bytes>, slot: Option<ConnSlot>) {
    let goodbye = async {
        for frame in &frames {
            io.write_all(frame).await?;
        }
        io.shutdown().await?;
        let mut sink = [0u8; 512];
        while io.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    };
    let _ = tokio::time::timeout(CLOSE_DEADLINE, goodbye).await;
    drop(slot);
}
