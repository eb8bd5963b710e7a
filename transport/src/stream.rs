//! Framed, typed CBOR messages over QUIC streams, and a request/response helper.

use std::{marker::PhantomData, time::Duration};

use iroh::endpoint::{Connection, RecvStream, SendStream};
use serde::{Serialize, de::DeserializeOwned};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::frame::{FRAME_HEADER_LEN, FrameError, cbor_decode, decode_header, encode_frame};

/// Writes typed frames to a stream.
///
/// Each [`FramedSend::send`] writes one length-prefixed CBOR frame. A message over the maximum is
/// refused before anything is written, so the stream stays usable.
#[derive(Debug)]
pub struct FramedSend<T, W = SendStream> {
    writer: W,
    max_frame_size: usize,
    _message: PhantomData<fn(T)>,
}

impl<T: Serialize, W: AsyncWrite + Unpin> FramedSend<T, W> {
    /// Frames messages onto `writer`, refusing any larger than `max_frame_size`.
    pub fn new(writer: W, max_frame_size: usize) -> Self {
        Self {
            writer,
            max_frame_size,
            _message: PhantomData,
        }
    }

    /// Encodes and writes one message.
    pub async fn send(&mut self, message: &T) -> Result<(), FrameError> {
        let frame = encode_frame(message, self.max_frame_size)?;
        self.writer.write_all(&frame).await?;
        Ok(())
    }

    /// Writes a frame that was encoded earlier with [`encode_frame`] (to encode once and send to
    /// many peers). The frame's size was checked when it was encoded.
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
#[derive(Debug)]
pub struct FramedRecv<T, R = RecvStream> {
    reader: R,
    max_frame_size: usize,
    _message: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned, R: AsyncRead + Unpin> FramedRecv<T, R> {
    /// Reads frames from `reader`, refusing any larger than `max_frame_size`.
    pub fn new(reader: R, max_frame_size: usize) -> Self {
        Self {
            reader,
            max_frame_size,
            _message: PhantomData,
        }
    }

    /// Reads the next message.
    ///
    /// Returns [`FrameError::Closed`] when the stream ended cleanly between frames,
    /// [`FrameError::TooLarge`] as soon as a header announces an oversized frame (nothing is
    /// allocated for it), and [`FrameError::Malformed`] when the body is not a `T`. After
    /// `Malformed` the stream is still aligned on the next frame and may be read on.
    pub async fn recv(&mut self) -> Result<T, FrameError> {
        let mut header = [0u8; FRAME_HEADER_LEN];
        let got = read_full(&mut self.reader, &mut header).await?;
        if got == 0 {
            return Err(FrameError::Closed);
        }
        if got < FRAME_HEADER_LEN {
            return Err(FrameError::Truncated {
                got,
                expected: FRAME_HEADER_LEN,
            });
        }
        let len = decode_header(header, self.max_frame_size)?;
        let mut body = vec![0u8; len];
        let got = read_full(&mut self.reader, &mut body).await?;
        if got < len {
            return Err(FrameError::Truncated { got, expected: len });
        }
        cbor_decode(&body)
    }

    /// The underlying reader.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.reader
    }

    /// Gives the reader back.
    pub fn into_inner(self) -> R {
        self.reader
    }
}

/// Reads until `buf` is full or the stream ends; returns how many bytes were read.
async fn read_full<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = reader.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
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
