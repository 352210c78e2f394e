//! Relays an upgraded connection (WebSocket or other) both ways until either
//! side closes or the admission is revoked. On revocation a WebSocket client
//! gets a close frame (1008, policy violation) before the TCP close, sent
//! only at a frame boundary of the app's stream so it is never spliced into
//! the middle of a frame.

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Close frame, server to client (unmasked): code 1008, reason "access revoked".
const CLOSE_POLICY_VIOLATION: [u8; 18] = [
    0x88, 16, 0x03, 0xF0, b'a', b'c', b'c', b'e', b's', b's', b' ', b'r', b'e', b'v', b'o', b'k',
    b'e', b'd',
];

const MID_FRAME_GRACE: std::time::Duration = std::time::Duration::from_millis(50);

/// Follows frame boundaries in a WebSocket byte stream (RFC 6455, 5.2).
#[derive(Debug, Default)]
pub struct FrameTracker {
    header: [u8; 14],
    header_len: usize,
    payload_left: u64,
}

impl FrameTracker {
    pub fn at_boundary(&self) -> bool {
        self.header_len == 0 && self.payload_left == 0
    }

    pub fn feed(&mut self, mut data: &[u8]) {
        while let Some((&byte, rest)) = data.split_first() {
            if self.payload_left > 0 {
                let n = usize::try_from(self.payload_left)
                    .map_or(data.len(), |left| left.min(data.len()));
                self.payload_left -= n as u64;
                data = &data[n..];
                continue;
            }
            self.header[self.header_len] = byte;
            self.header_len += 1;
            data = rest;
            if self.header_len < 2 {
                continue;
            }
            let len7 = self.header[1] & 0x7f;
            let extended = match len7 {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            let mask = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
            if self.header_len < 2 + extended + mask {
                continue;
            }
            self.payload_left = match extended {
                2 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
                8 => {
                    let mut be = [0u8; 8];
                    be.copy_from_slice(&self.header[2..10]);
                    u64::from_be_bytes(be)
                }
                _ => u64::from(len7),
            };
            self.header_len = 0;
        }
    }
}

pub async fn splice(client: Upgraded, app: Upgraded, websocket: bool, revoked: CancellationToken) {
    let (mut client_read, mut client_write) = tokio::io::split(TokioIo::new(client));
    let (mut app_read, mut app_write) = tokio::io::split(TokioIo::new(app));

    let up = async {
        let _ = tokio::io::copy(&mut client_read, &mut app_write).await;
        let _ = app_write.shutdown().await;
    };
    let down = async {
        let mut tracker = FrameTracker::default();
        let mut buf = vec![0u8; 16 * 1024];
        // After a revocation in the middle of an app frame, the app gets this
        // long to finish the frame before the connection is cut without one.
        let mut grace: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        loop {
            if revoked.is_cancelled() && (!websocket || tracker.at_boundary()) {
                if websocket {
                    let _ = client_write.write_all(&CLOSE_POLICY_VIOLATION).await;
                }
                let _ = client_write.shutdown().await;
                return;
            }
            tokio::select! {
                biased;
                () = revoked.cancelled(), if grace.is_none() => {
                    grace = Some(Box::pin(tokio::time::sleep(MID_FRAME_GRACE)));
                }
                () = async {
                    match grace.as_mut() {
                        Some(sleep) => sleep.await,
                        None => std::future::pending().await,
                    }
                } => {
                    let _ = client_write.shutdown().await;
                    return;
                }
                read = app_read.read(&mut buf) => {
                    let n = match read {
                        Ok(0) | Err(_) => {
                            let _ = client_write.shutdown().await;
                            return;
                        }
                        Ok(n) => n,
                    };
                    if websocket {
                        tracker.feed(&buf[..n]);
                    }
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    tokio::pin!(up, down);
    tokio::select! {
        () = &mut down => {}
        () = &mut up => down.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_boundaries_across_split_reads() {
        let mut tracker = FrameTracker::default();
        // Text frame "hello": header 0x81 0x05, 5 bytes payload.
        let frame = [0x81, 0x05, b'h', b'e', b'l', b'l', b'o'];
        tracker.feed(&frame[..1]);
        assert!(!tracker.at_boundary());
        tracker.feed(&frame[1..4]);
        assert!(!tracker.at_boundary());
        tracker.feed(&frame[4..]);
        assert!(tracker.at_boundary());
        // 16-bit length (300 bytes) and a masked frame, fed at once.
        let mut long = vec![0x82, 126, 0x01, 0x2C];
        long.extend(std::iter::repeat_n(7u8, 300));
        long.extend([0x81, 0x82, 1, 2, 3, 4, b'x', b'y']);
        tracker.feed(&long[..200]);
        assert!(!tracker.at_boundary());
        tracker.feed(&long[200..]);
        assert!(tracker.at_boundary());
        // An empty frame is a boundary right after its header.
        tracker.feed(&[0x8A, 0x00]);
        assert!(tracker.at_boundary());
    }

    #[test]
    fn close_frame_says_policy_violation() {
        assert_eq!(
            CLOSE_POLICY_VIOLATION[1] as usize,
            CLOSE_POLICY_VIOLATION.len() - 2
        );
        assert_eq!(
            u16::from_be_bytes([CLOSE_POLICY_VIOLATION[2], CLOSE_POLICY_VIOLATION[3]]),
            1008
        );
    }
}
