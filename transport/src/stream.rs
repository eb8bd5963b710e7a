//! Framed, typed CBOR messages over QUIC streams, and a request/response helper.

use std::{marker::PhantomData, time::Duration};

use iroh::endpoint::{Connection, RecvStream, SendStream};
use serde::{Serialize, de::DeserializeOwned};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::frame::{
    FRAME_HEADER_LEN, FrameError, cbor_decode_with_scratch, decode_header, encode_frame_into,
};

/// How much a [`FramedRecv`] asks the stream for at a time. Reading ahead lets many small frames
/// arrive in one read instead of two reads per frame.
const READ_AHEAD: usize = 64 * 1024;

/// Scratch space for CBOR byte strings: payloads up to this size are copied once when decoded.
const DECODE_SCRATCH: usize = 64 * 1024;

/// Writes typed frames to a stream.
///
/// Each [`FramedSend::send`] writes one length-prefixed CBOR frame. A message over the maximum is
/// refused before anything is written, so the stream stays usable. One encode buffer is reused
/// for every message.
#[derive(Debug)]
pub struct FramedSend<T, W = SendStream> {
    writer: W,
    max_frame_size: usize,
    buf: Vec<u8>,
    _message: PhantomData<fn(T)>,
}

impl<T: Serialize, W: AsyncWrite + Unpin> FramedSend<T, W> {
    /// Frames messages onto `writer`, refusing any larger than `max_frame_size`.
    pub fn new(writer: W, max_frame_size: usize) -> Self {
        Self {
            writer,
            max_frame_size,
            buf: Vec::new(),
            _message: PhantomData,
        }
    }

    /// Encodes and writes one message.
    pub async fn send(&mut self, message: &T) -> Result<(), FrameError> {
        encode_frame_into(message, self.max_frame_size, &mut self.buf)?;
        self.writer.write_all(&self.buf).await?;
        if self.buf.capacity() > READ_AHEAD.max(4 * self.buf.len()) {
            // One huge message should not pin its buffer for the stream's lifetime.
            self.buf = Vec::new();
        }
        Ok(())
    }

    /// Writes a frame that was encoded earlier with [`crate::encode_frame`] (to encode once and
    /// send to many peers). The frame's size was checked when it was encoded.
    pub async fn send_encoded(&mut self, frame: &[u8]) -> Result<(), FrameError> {
        self.writer.write_all(frame).await?;
        Ok(())
    }

    /// The underlying writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.writer
    }

    /// Gives the writer back.
    pub fn into_inner(self) -> W {
        self.writer
    }
}

impl<T> FramedSend<T, SendStream> {
    /// Ends the QUIC stream cleanly: the peer's reader sees [`FrameError::Closed`] after the last
    /// frame.
    pub fn finish(&mut self) -> Result<(), FrameError> {
        self.writer
            .finish()
            .map_err(|err| FrameError::Io(std::io::Error::other(err)))
    }
}

/// Reads typed frames from a stream.
///
/// It reads ahead up to 64 KiB at a time, so small frames cost one stream read per batch. Its
/// buffer never grows past the maximum frame size plus that read-ahead: the announced length is
/// checked before any room is made for a body.
#[derive(Debug)]
pub struct FramedRecv<T, R = RecvStream> {
    reader: R,
    max_frame_size: usize,
    /// Received bytes; `buf[pos..]` are not yet consumed.
    buf: Vec<u8>,
    pos: usize,
    scratch: Vec<u8>,
    /// Bytes taken from `reader` so far.
    bytes_read: u64,
    _message: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned, R: AsyncRead + Unpin> FramedRecv<T, R> {
    /// Reads frames from `reader`, refusing any larger than `max_frame_size`.
    pub fn new(reader: R, max_frame_size: usize) -> Self {
        Self {
            reader,
            max_frame_size,
            buf: Vec::new(),
            pos: 0,
            scratch: Vec::new(),
            bytes_read: 0,
            _message: PhantomData,
        }
    }

    /// Bytes taken from the reader so far, framing included (the read-ahead too, so the count
    /// may run ahead of the frames returned by up to 64 KiB).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Reads the next message.
    ///
    /// Returns [`FrameError::Closed`] when the stream ended cleanly between frames,
    /// [`FrameError::TooLarge`] as soon as a header announces an oversized frame (nothing is
    /// allocated for it), and [`FrameError::Malformed`] when the body is not a `T`. After
    /// `Malformed` the stream is still aligned on the next frame and may be read on.
    pub async fn recv(&mut self) -> Result<T, FrameError> {
        let got = self.fill(FRAME_HEADER_LEN).await?;
        if got == 0 {
            return Err(FrameError::Closed);
        }
        if got < FRAME_HEADER_LEN {
            return Err(FrameError::Truncated {
                got,
                expected: FRAME_HEADER_LEN,
            });
        }
        let header = self.buf[self.pos..self.pos + FRAME_HEADER_LEN]
            .try_into()
            .expect("slice of header length");
        let len = decode_header(header, self.max_frame_size)?;
        let got = self.fill(FRAME_HEADER_LEN + len).await?;
        if got < FRAME_HEADER_LEN + len {
            return Err(FrameError::Truncated {
                got: got - FRAME_HEADER_LEN,
                expected: len,
            });
        }
        let body_start = self.pos + FRAME_HEADER_LEN;
        self.pos = body_start + len;
        let scratch_len = len.clamp(1, DECODE_SCRATCH);
        if self.scratch.len() < scratch_len {
            self.scratch.resize(scratch_len, 0);
        }
        cbor_decode_with_scratch(&self.buf[body_start..self.pos], &mut self.scratch)
    }

    /// Reads until `need` unconsumed bytes are buffered or the stream ends; returns how many
    /// unconsumed bytes there are.
    async fn fill(&mut self, need: usize) -> Result<usize, FrameError> {
        while self.buf.len() - self.pos < need {
            if self.pos > 0 {
                // Move the unconsumed tail to the front before growing.
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
            // Room for the rest of this frame and a read-ahead; `need` is bounded by the
            // maximum frame size, checked by the caller.
            let wanted = need.max(self.buf.len() + READ_AHEAD);
            self.buf.reserve_exact(wanted - self.buf.len());
            let read = self.reader.read_buf(&mut self.buf).await?;
            if read == 0 {
                break;
            }
            self.bytes_read += read as u64;
        }
        Ok(self.buf.len() - self.pos)
    }

    /// The underlying reader.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.reader
    }

    /// Gives the reader back with the bytes read ahead but not yet consumed.
    pub fn into_parts(self) -> (R, Vec<u8>) {
        let mut rest = self.buf;
        rest.drain(..self.pos);
        (self.reader, rest)
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No response arrived within the timeout.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The stream could not be opened.
    #[error("could not open a stream: {0}")]
    Connection(#[from] iroh::endpoint::ConnectionError),
    /// Writing the request or reading the response failed.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Sends one request on a new bidirectional stream and waits for one response, all within
/// `timeout`.
pub async fn request<Req, Resp>(
    connection: &Connection,
    request: &Req,
    max_frame_size: usize,
    timeout: Duration,
) -> Result<Resp, RequestError>
where
    Req: Serialize,
    Resp: DeserializeOwned,
{
    let exchange = async {
        let (send, recv) = connection.open_bi().await?;
        let mut send = FramedSend::<Req>::new(send, max_frame_size);
        send.send(request).await?;
        send.finish()?;
        let mut recv = FramedRecv::<Resp>::new(recv, max_frame_size);
        Ok::<_, RequestError>(recv.recv().await?)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| RequestError::Timeout(timeout))?
}

/// Accepts one request on the next bidirectional stream of `connection`; answer it with the
/// returned [`Responder`].
pub async fn accept_request<Req, Resp>(
    connection: &Connection,
    max_frame_size: usize,
) -> Result<(Req, Responder<Resp>), RequestError>
where
    Req: DeserializeOwned,
    Resp: Serialize,
{
    let (send, recv) = connection.accept_bi().await?;
    let mut recv = FramedRecv::<Req>::new(recv, max_frame_size);
    let request = recv.recv().await?;
    Ok((
        request,
        Responder {
            send: FramedSend::new(send, max_frame_size),
        },
    ))
}

/// Sends the one response to a request accepted with [`accept_request`].
#[derive(Debug)]
pub struct Responder<Resp> {
    send: FramedSend<Resp>,
}

impl<Resp: Serialize> Responder<Resp> {
    /// Writes the response and finishes the stream.
    pub async fn respond(mut self, response: &Resp) -> Result<(), FrameError> {
        self.send.send(response).await?;
        self.send.finish()
    }
}
