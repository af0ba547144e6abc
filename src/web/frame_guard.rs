//! FrameScanner watches the bytes of an upgraded WebSocket as they are read, before the
//! frame parser sees them, and refuses a frame the moment its header declares a payload
//! over the hard limit, or a fragmented message whose fragments add up past it, so a client
//! can neither make the server hold a gigabyte nor hold a socket open by declaring one and
//! sending ten bytes. It only reads headers; `src/web/ws.rs` feeds it every read.

/// Where the guard is in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Reading a frame header; `have` bytes of it are in `header`.
    Header { have: usize },
    /// Inside a payload with this many bytes still to come.
    Payload { remaining: u64 },
}

/// The pure part: a header scanner fed with chunks. Answers an error as soon as a frame or
/// a message is known to be over `limit`.
#[derive(Debug, Clone)]
pub struct FrameScanner {
    limit: u64,
    position: Position,
    header: [u8; 14],
    /// Payload bytes of the fragmented message in progress, if one is.
    message: Option<u64>,
}

/// Why the guard refused the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// One frame declares more than the limit.
    Frame {
        /// The declared payload length.
        declared: u64,
    },
    /// The fragments of one message add up to more than the limit.
    Message {
        /// Payload bytes declared so far, the new fragment included.
        total: u64,
    },
}

impl FrameScanner {
    /// A scanner refusing frames and messages over `limit` payload bytes.
    pub fn new(limit: usize) -> Self {
        FrameScanner { limit: limit as u64, position: Position::Header { have: 0 }, header: [0; 14], message: None }
    }

    /// Feeds the next bytes of the stream.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Refusal> {
        while !bytes.is_empty() {
            match self.position {
                Position::Payload { remaining } => {
                    let take = remaining.min(bytes.len() as u64);
                    bytes = &bytes[take as usize..];
                    let remaining = remaining - take;
                    self.position =
                        if remaining == 0 { Position::Header { have: 0 } } else { Position::Payload { remaining } };
                }
                Position::Header { mut have } => {
                    // Take header bytes one at a time until the header is complete: its
                    // length depends on its second byte.
                    while have < self.header.len() && !bytes.is_empty() {
                        self.header[have] = bytes[0];
                        bytes = &bytes[1..];
                        have += 1;
                        if have >= 2 && have == header_len(&self.header) {
                            break;
                        }
                    }
                    if have < 2 || have < header_len(&self.header) {
                        self.position = Position::Header { have };
                        continue;
                    }
                    let length = payload_len(&self.header);
                    self.check(self.header[0], length)?;
                    self.position = if length == 0 {
                        Position::Header { have: 0 }
                    } else {
                        Position::Payload { remaining: length }
                    };
                }
            }
        }
        Ok(())
    }

    fn check(&mut self, first: u8, length: u64) -> Result<(), Refusal> {
        let fin = first & 0x80 != 0;
        let opcode = first & 0x0f;
        if opcode >= 0x8 {
            return Ok(()); // control frames: the parser enforces their 125-byte limit
        }
        if length > self.limit {
            return Err(Refusal::Frame { declared: length });
        }
        let total = match (opcode, self.message) {
            (0x0, Some(so_far)) => so_far.saturating_add(length),
            // A new text/binary frame (or a stray continuation: the parser refuses it).
            _ => length,
        };
        if total > self.limit {
            return Err(Refusal::Message { total });
        }
        self.message = if fin { None } else { Some(total) };
        Ok(())
    }
}

/// Length of a client frame header (masked, as RFC 6455 requires of clients), from its
/// first two bytes.
fn header_len(header: &[u8; 14]) -> usize {
    let masked = if header[1] & 0x80 != 0 { 4 } else { 0 };
    match header[1] & 0x7f {
        126 => 4 + masked,
        127 => 10 + masked,
        _ => 2 + masked,
    }
}

fn payload_len(header: &[u8; 14]) -> u64 {
    match header[1] & 0x7f {
        126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
        127 => {
            u64::from_be_bytes([header[2], header[3], header[4], header[5], header[6], header[7], header[8], header[9]])
        }
        n => u64::from(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame header.
    fn header(first: u8, len: u64) -> Vec<u8> {
        let mut h = vec![first];
        match len {
            n if n < 126 => h.push(0x80 | n as u8),
            n if n <= 0xffff => {
                h.push(0x80 | 126);
                h.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                h.push(0x80 | 127);
                h.extend_from_slice(&n.to_be_bytes());
            }
        }
        h.extend_from_slice(&[1, 2, 3, 4]);
        h
    }

    fn frame(first: u8, len: usize) -> Vec<u8> {
        let mut f = header(first, len as u64);
        f.extend(std::iter::repeat_n(b'a', len));
        f
    }

    #[test]
    fn frames_within_the_limit_pass_in_any_chunking() {
        let mut stream = Vec::new();
        for len in [0, 5, 125, 126, 1000, 65_535, 65_536, 70_000] {
            stream.extend(frame(0x81, len));
            stream.extend(frame(0x89, 4)); // a ping between
        }
        for chunk in [1, 2, 3, 7, 13, 4096, stream.len()] {
            let mut s = FrameScanner::new(70_000);
            for part in stream.chunks(chunk) {
                s.feed(part).expect("within the limit");
            }
            assert_eq!(s.position, Position::Header { have: 0 }, "ends on a frame boundary (chunk {chunk})");
        }
    }

    #[test]
    fn a_header_over_the_limit_is_refused_before_its_payload() {
        let mut s = FrameScanner::new(1024);
        let h = header(0x81, 1 << 30);
        // Every byte but the last of the header passes; the last completes it.
        s.feed(&h[..h.len() - 1]).expect("header incomplete");
        assert_eq!(s.feed(&h[h.len() - 1..]), Err(Refusal::Frame { declared: 1 << 30 }));
        let mut s = FrameScanner::new(1024);
        assert_eq!(s.feed(&header(0x82, 1025)), Err(Refusal::Frame { declared: 1025 }));
        assert!(FrameScanner::new(1024).feed(&header(0x81, 1024)).is_ok());
    }

    #[test]
    fn a_fragmented_message_is_refused_when_its_fragments_pass_the_limit() {
        let mut s = FrameScanner::new(1000);
        s.feed(&frame(0x01, 400)).expect("first fragment");
        s.feed(&frame(0x89, 10)).expect("a control frame in between does not count");
        s.feed(&frame(0x00, 400)).expect("800 so far");
        assert_eq!(s.feed(&header(0x80, 201)), Err(Refusal::Message { total: 1001 }));
        // A message that ends resets the count.
        let mut s = FrameScanner::new(1000);
        s.feed(&frame(0x01, 600)).expect("first");
        s.feed(&frame(0x80, 400)).expect("last: exactly 1000");
        s.feed(&frame(0x81, 1000)).expect("a new message starts from zero");
    }
}
